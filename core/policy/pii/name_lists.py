"""Word lists the name recogniser needs: common given names (many cultures, in Latin script), Chinese surnames
and the characters common in Chinese given names. Written for this module; ambiguous English words that are also
given names (Will, May, Grant, Rose, Mark, Hope, Georgia …) are left out on purpose: they count only after a cue."""
from __future__ import annotations

FIRST_NAMES = frozenset("""
Aaron Abby Abdul Abigail Adam Adrian Agnes Ahmed Aidan Aiden Aisha Akira Alan Albert Alberto Alejandro Alex Alexa
Alexander Alexandra Alexis Alfred Ali Alice Alicia Alina Alison Allison Alyssa Amanda Amelia Amir Amit Amy Ana Anastasia
Andrea Andreas Andrew Andy Angela Angelica Anita Anjali Ann Anna Anne Annie Anthony Antoine Antonio Anya Arjun Arnav
Arthur Arun Ashley Astrid Audrey Ava Ayesha Barbara Beatrice Beatriz Ben Benjamin Bernard Beth Bethany Betty Bianca
Bobby Boris Brandon Brenda Brian Bridget Brittany Bruce Bruno Bryan Caitlin Caleb Cameron Camila Carl Carla Carlos
Carmen Carol Caroline Carolyn Catherine Cecilia Celine Chantal Charles Charlie Charlotte Chen Cheryl Chiara Chloe
Chris Christina Christine Christopher Cindy Claire Clara Claudia Colin Connor Craig Cynthia Daniel Daniela Danielle
Darius Darren David Deborah Debra Deepak Denis Dennis Derek Devon Diana Diane Diego Dimitri Divya Dmitri Dominic
Donald Donna Dorothy Douglas Dylan Edward Eileen Elena Eleanor Eli Elias Elijah Elise Elizabeth Ella Ellen Elliot
Emilia Emily Emma Emmanuel Enrique Eric Erica Erik Erin Esther Ethan Eugene Eva Evan Evelyn Fabian Farah Fatima Felix
Fernando Fiona Florian Francesca Francesco Francis Francisco Franco Frank Franz Fred Freya Gabriel Gabriela Gareth
Gary Gavin Gemma George Gerald Gerard Gina Giovanni Giulia Gloria Gordon Greta Gregory Gustavo Hamza Hana Hannah Hans
Harold Harry Harvey Hassan Heather Hector Heidi Helen Helena Henry Hiroshi Hugo Hussein Ian Ibrahim Igor Ilya Imran
Ingrid Irene Isaac Isabel Isabella Isabelle Ivan Jacob Jacqueline Jake James Jamie Jan Jane Janet Janice Jasmine
Jason Javier Jean Jeffrey Jennifer Jenny Jeremy Jerome Jessica Jesus Jill Joan Joanna Joanne Joao Joe Joel Johan
Johann John Jonathan Jorge Jose Josef Joseph Joshua Juan Judith Julia Julian Juliana Julie Julien Julius Justin
Kai Kamal Karen Karim Karin Karl Kate Katherine Kathleen Kathryn Katie Katrin Kavya Keith Kelly Ken Kenji Kenneth
Kevin Khalid Kim Kimberly Klaus Krishna Kristen Kyle Lakshmi Lara Larry Laura Lauren Laurent Lea Leah Leila Lena Leo
Leon Leonardo Leslie Liam Linda Lindsay Lisa Logan Lorenzo Louis Louise Luca Lucas Lucia Lucy Luis Luisa Lukas Luke
Magdalena Maggie Mahmoud Manuel Marc Marcel Marco Marcus Margaret Maria Mariana Marie Marina Mario Marion Marta Martha
Martin Mary Mason Mateo Matthew Matthias Maurice Max Maya Megan Mei Melanie Melissa Mia Michael Michaela Michel Michelle
Miguel Mike Mikhail Milan Miriam Mohamed Mohammed Monica Monique Muhammad Nadia Nancy Naomi Natalia Natalie Nathan
Neha Neil Nicholas Nicola Nicolas Nicole Niklas Nikolai Nina Noah Noor Nora Norman Oliver Olivia Omar Oscar Owen
Pablo Pamela Paola Patricia Patrick Paul Paula Pedro Peter Philip Philippe Pierre Pooja Priya Rachel Rafael Rahul
Rajesh Ralph Ramon Randy Raquel Rashid Raul Rebecca Ricardo Richard Rita Robert Roberto Robin Roger Roman Ronald
Rosa Ryan Sabrina Sakura Sam Samantha Samir Samuel Sandra Sanjay Sara Sarah Sean Sebastian Sergei Sergio Shannon
Sharon Shirley Simon Simone Sofia Sophia Sophie Stefan Stefanie Stella Stephanie Stephen Steven Susan Suzanne Sven
Sylvia Takashi Tamara Tanya Teresa Theo Theodore Thomas Tiffany Tim Timothy Tina Tobias Todd Tom Tomas Tomasz Tony
Tracy Tyler Valentina Valerie Vanessa Vera Veronica Vicente Victor Vikram Vincent Viktor Vivian Vladimir Walter Wang
Wei Wendy William Xavier Yasmin Yuki Yusuf Yvonne Zachary Zara Zoe Zhang Li Liu Yang Huang Zhao Wu Zhou Xu Hao
Oluwaseun Chinedu Ngozi Emeka Adebayo Aminata Kwame Kofi Abena Thabo Zanele Siobhan Aoife Niamh Ciaran Eoin Padraig
Seamus Declan Rhys Dafydd Cerys Sinead Gráinne Margit Zsofia Agnieszka Katarzyna Piotr Krzysztof Wojciech Magnus Lars
Bjorn Ingrid Sigrid Nils Anders Henrik Mette Pia Jurgen Jürgen Dieter Helmut Wolfgang Uwe Sabine Ursula Gisela Renate
Manfred Rainer Horst Thorsten Dirk Jens Lukas Jonas Finn Emil Paulina Amelie Mathilde Camille Manon Chloé Léa Inès
Zoé Hélène Élodie Amélie Aurélie Sébastien Jérôme Stéphane Frédéric Thierry Olivier Guillaume Mathieu Benoît Rémi
Yannick Gaël Matteo Alessandro Federico Riccardo Davide Simona Alessia Martina Chiara Ilaria Silvia Valeria Elisa
Camilla Beatrice Lorena Joaquín José María Sofía Lucía Martín Andrés Álvaro Jesús Mónica Inés Rocío Pilar Nuria
Montserrat Teresa Consuelo Guadalupe Ximena Valentín Tiago João Gonçalo Rui Inês Mariana Beatriz Leonor Thiago
Rafaela Gabriel Larissa Letícia Vitória Bruna Fernanda Juliana Priscila Renata Vinícius Rodrigo Leandro Anderson
Aarav Vihaan Aditya Ishaan Rohan Karan Ravi Suresh Ramesh Mahesh Ganesh Venkat Srinivas Lakshman Ananya Aditi Diya
Isha Kiran Meera Nisha Pallavi Shreya Sneha Swati Sunita Geeta Rekha Farhan Faisal Tariq Zainab Mariam Layla Hiba
Amina Salma Youssef Mustafa Karima Nour Rania Samira Yasmine Hiroko Haruto Yuto Sota Riku Yui Aoi Hina Rin Sakura
Naoko Keiko Yoko Emi Mai Takumi Kenta Daiki Shota Minho Jisoo Jiwoo Seojun Minseo Hyun Jiho Eunji Sooyoung
""".split())

# Capitalised words that are never part of a person's name here: streets, institutions, days, function words.
NOT_NAME_WORDS = frozenset("""
Street St Road Rd Avenue Ave Lane Station Garden Gardens Day Days Pay Wallet Web Services Service Bank Square Tower
Center Centre University College School Hospital Airport Times Post Journal Team Support Group Inc Ltd LLC Corp
Company Studio Studios Labs Cloud Mobile AI Monday Tuesday Wednesday Thursday Friday Saturday Sunday Edition Series
Version Release Beach County State Valley Heights Tokens Mode Plan Account Award Prize Foundation Institute Museum
Library Church Cathedral Stadium Arena Hotel Restaurant Cafe Bar Club Festival Show Cup League Trophy Channel Network
News Press Review Magazine Records Music Films Pictures Games Store Shop Market Mall Plaza Court Castle Palace Way
Drive Terrace Close Crescent Grove Place Row Walk Parkway The And Or Of In On At To For With From By Is Are Was Were
Will Would Can Could Should Must Might Has Have Had Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec Mon Tue Wed Thu
Fri Sat Sun
""".split())
# Words that are surnames too (Amanda Park, Mohammed Hill) or given names too (April, June): a name after a title
# or an introducing phrase may hold them; a known given name followed by one of them is not taken as a name.
PLACE_OR_MONTH_WORDS = frozenset("""
Park Hill Hall House Bridge Green Lake River Rivers Mountain Island City Field Fields Wood Woods Brook Ford Street
January February March April May June July August September October November December
""".split())

ZH_SURNAMES = frozenset("""
王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 林 罗 高 郑 梁 谢 宋 唐 许 韩 冯 邓 曹 彭 曾 萧 肖 田 董 袁 潘 蒋 蔡
余 杜 叶 程 苏 魏 吕 丁 沈 任 姚 卢 傅 钟 姜 崔 谭 廖 范 汪 陆 金 石 戴 贾 韦 夏 邱 方 侯 邹 熊 孟 秦 白 江 阎 薛 尹 段
雷 黎 史 龙 陶 贺 顾 毛 郝 龚 邵 万 钱 严 覃 武 戚 莫 孔 汤 向 常 温 康 施 文 牛 樊 葛 邢 安 齐 易 乔 伍 庞 颜 倪 庄 聂
章 鲁 岳 翟 殷 詹 申 欧 耿 关 兰 焦 俞 左 柳 甘 祝 包 宁 尚 符 舒 阮 柯 纪 梅 童 凌 毕 单 季 裴 霍 涂 成 苗 谷 盛 曲 翁
冉 骆 蓝 路 游 辛 靳 管 柴 蒙 鲍 华 喻 祁 蒲 房 滕 屈 饶 解 牟 艾 尤 阳 时 穆 农 司 卓 古 吉 缪 简 车 项 连 芦 麦 褚 娄
窦 戎 柏 邬 丰 景 卞 盖 赖 栾 桂 晏 胥 费 卫 仲 刁 沙 巫 寇 桑 郎 甄 丛 仇 虞 敖 米 池 佟 隋 郁 冷 边 卜 宫 伊 迟 牧
""".split())
ZH_COMPOUND_SURNAMES = ("欧阳", "上官", "司马", "诸葛", "东方", "皇甫", "令狐", "慕容", "尉迟", "公孙", "夏侯", "长孙",
                        "端木", "独孤", "南宫", "西门", "司徒", "宇文", "呼延", "轩辕", "申屠", "澹台")

# Characters common in Chinese given names. A surname followed by one or two of these, next to a cue, is a name.
ZH_GIVEN = frozenset("""
伟 芳 娜 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀 霞 平 刚 桂 英 华 玉 兰 红 梅 文 辉 建 国 飞 鹏 宇 浩 婷 雪
琳 晨 欣 怡 佳 俊 凯 昊 然 涵 轩 梓 子 博 睿 思 雨 萱 晓 东 小 龙 峰 斌 波 亮 林 海 鑫 宁 慧 颖 倩 璐 瑶 薇 蕾 莉 菲
燕 萍 莹 洁 琴 云 凤 琼 岚 蓉 娇 婉 妍 嫣 冰 清 晶 月 春 秋 冬 阳 光 星 一 永 志 义 德 仁 礼 智 信 忠 安 康 福 寿 喜
乐 荣 贵 富 泉 山 川 江 河 湖 森 树 松 柏 竹 兵 武 力 勤 正 诚 和 顺 达 通 成 功 立 新 兴 旺 发 生 金 银 钢 锋 铭 锦
家 庭 伦 玲 珍 珠 宝 彬 彦 翔 鸿 鹤 凡 帆 航 远 泽 润 瀚 霖 露 雯 霏 韵 琪 琦 瑞 祥 禄 雷 震 虎 鹰 骏 驰 毅 坚 健 耀
晖 煜 炜 烨 焕 熙 灿 诗 书 墨 彤 丹 青 翠 碧 紫 芸 芝 荷 莲 菊 蕙 茜 萌 媛 姗 婧 娴 妮 娅 姝 婕 嘉 楠 桐 柳 梦 馨 悦
心 意 恩 惠 慈 爱 美 良 善 贤 淑 惟 维 唯 依 宜 仪 逸 艺 翼 奕 亦 益 岩 延 言 炎 雁 扬 尧 遥 业 晔 羽 元 源 苑 越 哲
振 峥 之 中 舟 洲 卓 宗 祖 佐 寒 汉 翰 皓 豪 恒 弘 宏 虹 骅 桦 欢 剑 捷 瑾 晋 京 景 靖 菁 敬 久 峻 楷 可 克 坤 朗 黎
利 连 灵 龄 令 洛 曼 茂 蒙 苗 妙 民 鸣 木 沐 穆 凝 诺 沛 品 祺 奇 启 谦 乾 乔 沁 晴 权 群 儒 若 杉 尚 少 绍 胜 圣 石
时 世 仕 舒 帅 双 爽 朔 颂 素 泰 韬 腾 天 田 甜 童 拓 威 卫 蔚 闻 稳 希 曦 侠 仙 献 向 笑 旭 玄 璇 勋 迅 亚 雅 研 衍 艳
焱 阳 耀 怡 颐 义 毅 音 银 盈 莺 颖 永 勇 优 友 瑜 雨 语 育 钰 誉 渊 媛 苑 岳 跃 云 允 芸 泽 展 昭 兆 哲 真 臻 振 征
正 志 致 智 忠 钟 洲 竹 卓 子 梓 宗 纵 尊 亭 婵 丁 凌 绮 朝 晗 辰 宸 弈 烊 钊 彪 斐 玮 琛 珏 瑄 璟 翊 郡 骁 骞 蓓
淼 琰 筱 婳 灏 睿 翊 颢 懿 霓 鑫 晟 煊 霄 魁 璋 冠 涌 冉 溪 澜 漫 湘 滢 潇 澄 汐 沫 浅 涟 潼 燊 焰 燃 煦 熠 毛 鹿
""".split())
