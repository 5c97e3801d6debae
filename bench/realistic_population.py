"""A realistic Alma patron base of a US university, with labelled duplicates and look-alikes.

This is the yardstick of the duplicate linkage (``bench/linkage_realistic.py``). It is built from what
real registries look like, not from what the kit's own sandbox plants, and shares nothing with
``almatools/sandbox/generator/``: its own name lists, its own contact model, its own account
histories. Run it alone to write a population::

    python bench/realistic_population.py --users 50000 --seed 1 --out /tmp/pop

The institution
---------------
"Piedmont State University" (``piedmont.edu``, Raleigh-Durham, North Carolina). Every person has
one account; about 3% of people (``DUP_PEOPLE``) have two or more (15% of those three). Groups
(shares of people, from the make-up of a mid-size US public university's Alma patron base, where
current students dominate and locally registered borrowers are a tenth):

===========  ===========================================================  =====
UGRAD        undergraduates, SIS-loaded (EXTERNAL, external_id PSU_BANNER)    41%
GRAD         graduate students, SIS                                           15%
FACULTY      faculty, SIS (from HR through the same profile)                   6%
STAFF        staff, SIS                                                        9%
former       students who left; their SIS record stays, INACTIVE               8%
ALUMNI       alumni borrowers, registered at the desk (INTERNAL)               6%
COMMUNITY    community borrowers (INTERNAL)                                    8%
RECIPROCAL   borrowers from partner universities (INTERNAL)                    3%
FRIENDS      Friends of the Library (INTERNAL)                                 2%
VISITING     visiting scholars (INTERNAL)                                      2%
===========  ===========================================================  =====

Assumptions, stated so they can be argued with
----------------------------------------------
* **Names.** Origins (shares of people): US/English-speaking 52%, Hispanic 17%, Chinese 7%,
  South Asian 6%, European with letters that do not decompose or with particles 6%, Korean 3%,
  Vietnamese 3%, Arabic 3%, Turkish 1% (folded into European). Within an origin, listed surnames
  follow a Zipf-like law (weight ``1 / (rank + 2) ** s``) or, for Vietnamese, Korean and Chinese,
  published national shares (Nguyễn about 38% of Vietnamese, Kim about 21% of Koreans, Wang/Li/Zhang
  about 7% each of Chinese); so the population holds hundreds of Smiths, Garcias, Nguyens, Lis,
  Wangs, Kims and Patels. A long tail (40% of US names, 30% of European names) is made of rare
  compound surnames, so most surnames are rare, as in a census. Diacritics (Đặng, Nguyễn, García,
  Søren, Łukasz) are kept in the SIS spelling for half of the people whose names have them
  (passports and admissions forms often write them in ASCII). 25% of Hispanic people carry two
  surnames; 4% of US people a hyphenated one. Suffixes (Jr, Sr, II, III) on 3% of US men, written
  into the last name or dropped. 70% of US people have a middle name; Vietnamese nearly all
  (Thị, Văn...). A preferred first name (Alma's ``pref_first_name``) is set for 45% of East Asian
  students (an English name: Jack for Hương Đặng) and 6% of others (a nickname, or the middle name).
* **Contacts.** SIS records nearly always have the birth date (99.5%) and the institutional email
  (netid@piedmont.edu, preferred), often a personal email (65%), a mobile (85%), a home phone
  (35%) and a permanent plus a local address. Local records: birth date 35%, email 95% (a personal
  one, preferred), phone 80%, address 85%. Each record writes a phone in its own format
  (``+1 (919) 555-0134``, ``919.555.0134``, ``9195550134``...), international students' phones with
  a country code in several forms; addresses vary in ``Apt 4B``/``Apt. 4B``/``#4B``,
  ``St.``/``Street``, ``Ave``/``Avenue``, ZIP or ZIP+4, German ``Straße``/``Strasse``.
* **Identifiers.** SIS: primary id = the 9-digit university id, plus UNIV_ID, NET_ID and BARCODE
  identifiers. Local: primary id = a library barcode, the person's email, or surname+initial+digits;
  a BARCODE identifier.

Duplicate patterns (shares of extra accounts, :data:`DUP_PATTERNS`)
-------------------------------------------------------------------
``alum_old_sis_new_local`` an alum's old SIS record and a new ALUMNI desk record (moved, new email;
sometimes the old personal email or phone) · ``local_other_id`` a desk record of a current SIS person
under another id · ``community_twice`` a community borrower registered twice · ``married_name`` a new
surname with some shared field (the old surname kept in a personal email in 40%) ·
``married_hyphenated`` maiden-married double surname · ``name_only`` a new surname and nothing but the
first name shared (no linker can find it; reported, and excluded from recall-with-evidence by the
evidence test, not by the label) · ``sis_reenrolled`` two SIS records under two university ids ·
``double_surname`` García López / Garcia-Lopez / Garcia, and hyphenated names written with a space
or run together · ``transliteration`` Zhang/Chang, Xu/Hsu, Lee/Yi, Mohammed/Muhammad, Xiaoming/Xiao
Ming · ``initials`` J. Smith · ``middle_in_first`` "Mary Ann" with no middle name ·
``dob_swap`` day and month swapped · ``dob_typo`` one digit of the birth date wrong · ``nickname``
Bill/William, Lupe/Guadalupe · ``pref_name_as_first`` the preferred name typed as the first name ·
``typo`` one slip of the keyboard in a name · ``accents_dropped`` Đặng→Dang, Søren→Soeren,
Müller→Mueller · ``shared_other_email_only`` / ``shared_other_phone_only`` / ``shared_address_only``
the same name and just that one non-preferred field · ``rare_name_only`` a rare full name and nothing
else · ``local_no_birthdate`` a desk record without a birth date sharing an email or phone.

Look-alikes (different people, :data:`LOOKALIKES`)
--------------------------------------------------
``twins`` same surname, birth date, address and home phone, different first names · ``siblings``
same surname, address and home phone, 1-8 years apart · ``parent_child`` one full name (Jr/Sr, often
without the suffix), 22-40 years apart, one address · ``spouses`` a shared phone and address, same
surname in half · ``family_email`` one family address (smithfamily@...) for a parent and a child ·
``namesake`` a common full name (John Smith, Maria Garcia, Fang Li) and nothing else ·
``namesake_email_user`` a namesake whose personal email user name is the other's netid (jwang@gmail.com
and jwang@piedmont.edu) · ``similar_email_user`` one surname, netids one letter apart (jwang/lwang) ·
``roommates`` one dorm room · ``institution_phone`` a department's main number on several staff ·
``placeholder_email`` none@none.com and the like typed for community borrowers.

Files written by :func:`write_population`: ``users.jsonl`` (one Alma user object per line, rest_user
shape as ``GET /users/{id}`` returns it), ``truth.csv`` (``primary_id,person_id,pattern``; the first
account of a person is ``original``) and ``lookalikes.csv``
(``primary_id_l,primary_id_r,pattern``). Output depends only on ``(users, seed)``.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import functools
import itertools
import json
import random
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

TODAY = date(2026, 9, 1)
DOMAIN = "piedmont.edu"
ALUMNI_DOMAIN = "alumni.piedmont.edu"
SIS_PROFILE = "PSU_BANNER"
DUP_PEOPLE = 0.03
"""Share of people with two or more accounts."""
THIRD_ACCOUNT = 0.15
"""Share of those with a third account."""

# ---------------------------------------------------------------------------------------------
# Sampling


class Pick:
    """Weighted choice with precomputed cumulative weights (``random.choices`` rebuilds them each call)."""

    def __init__(self, items: list[Any], weights: list[float]) -> None:
        self.items = list(items)
        self.cum = list(itertools.accumulate(weights))

    def __call__(self, rng: random.Random) -> Any:
        return self.items[bisect.bisect(self.cum, rng.random() * self.cum[-1])]


def zipf(items: list[Any], s: float = 1.0, offset: float = 2.0) -> Pick:
    """Items in frequency order, weighted ``1 / (rank + offset) ** s``."""
    return Pick(items, [1.0 / (i + offset) ** s for i in range(len(items))])


def shares(text: str) -> Pick:
    """``"Nguyễn 38, Trần 11"`` -> a Pick weighted by the numbers."""
    items, weights = [], []
    for part in text.split(","):
        name, _, w = part.strip().rpartition(" ")
        items.append(name)
        weights.append(float(w))
    return Pick(items, weights)


def words(text: str) -> list[str]:
    return [w.strip() for w in text.split(",") if w.strip()]


# ---------------------------------------------------------------------------------------------
# Names (own lists; frequency order where a Zipf law is applied)

US_SURNAMES = words("""
Smith, Johnson, Williams, Brown, Jones, Miller, Davis, Wilson, Anderson, Taylor, Thomas, Moore, Jackson,
Martin, Thompson, White, Harris, Clark, Lewis, Robinson, Walker, Young, Allen, King, Wright, Scott, Hill,
Green, Adams, Baker, Nelson, Carter, Mitchell, Roberts, Turner, Phillips, Campbell, Parker, Evans, Edwards,
Collins, Stewart, Morris, Murphy, Cook, Rogers, Morgan, Cooper, Peterson, Bailey, Reed, Kelly, Howard, Cox,
Ward, Richardson, Watson, Brooks, Wood, James, Bennett, Gray, Hughes, Price, Sanders, Myers, Long, Ross,
Foster, Powell, Jenkins, Perry, Russell, Sullivan, Bell, Coleman, Butler, Henderson, Barnes, Fisher, Graham,
Reynolds, Hamilton, Wallace, Cole, West, Jordan, Owens, Hayes, Gibson, Ellis, Stevens, Murray, Ford,
Marshall, Harrison, McDonald, O'Brien, Washington, Freeman, Wells, Webb, Simpson, Tucker, Porter, Hunter,
Hicks, Crawford, Boyd, Mason, Warren, Dixon, Burns, Gordon, Shaw, Holmes, Rice, Robertson, Black, Daniels,
Palmer, Mills, Grant, Knight, Ferguson, Stone, Hawkins, Dunn, Perkins, Hudson, Spencer, Gardner, Stephens,
Payne, Pierce, Berry, Matthews, Arnold, Wagner, Willis, Ray, Watkins, Olson, Carroll, Duncan, Snyder, Hart,
Cunningham, Bradley, Lane, Andrews, Harper, Fox, Riley, Armstrong, Carpenter, Weaver, Greene, Lawrence,
Elliott, Sims, Austin, Peters, Kelley, Franklin, Lawson, Fields, McCoy, O'Connor, McCarthy, Fitzgerald,
McLaughlin, MacLeod, O'Neill, Schmidt, Schneider, Meyer, Hoffman, Becker, Koch, Richter, Klein, Wolf,
Bauer, Hartmann, Lange, Krause, Walsh, Byrne, Doyle, Lynch, Quinn, Gallagher, Brennan, Kavanagh, Duffy
""")
US_TAIL_A = words("""Ash, Black, Brad, Brook, Chamber, Dal, Fair, Hol, Kings, Lang, Mar, Pem, Rad, Sel,
Stan, Thorn, Whit, Wood, Cal, Har, Mer, Wes, Pen, Rox, Stock, Wether, Kirk, Lind, Bram, Cran, Dun, Glen,
Hather, Ing, Mid, Nor, Ox, Red, Shel, Tre, Wick, Yar""")
US_TAIL_B = words("""ford, ley, ton, worth, wood, field, by, well, man, more, ham, ridge, stead, croft,
dale, hurst, wick, ington, bury, mont, shaw, brook, cott, den, gate, holm, thwaite, combe, sley, ber""")
GERMANIC_A = words("Schnei, Hoff, Berg, Rosen, Stein, Wein, Eichen, Lichten, Gold, Kirch, Alten, Oster, Lind, Feld, Hasel")
GERMANIC_B = words("mann, berger, stein, felder, thal, bach, baum, hauer, meier, huber, reiter, wald")

US_MALE = words("""
Michael, James, John, Robert, David, William, Christopher, Joseph, Daniel, Matthew, Joshua, Andrew, Anthony,
Ryan, Tyler, Brandon, Nicholas, Jacob, Justin, Kevin, Jonathan, Thomas, Eric, Zachary, Benjamin, Alexander,
Samuel, Jason, Kyle, Aaron, Steven, Richard, Charles, Austin, Ethan, Noah, Logan, Dylan, Caleb, Nathan,
Timothy, Patrick, Jordan, Brian, Cody, Sean, Trevor, Connor, Hunter, Marcus, Edward, Gregory, Peter,
Kenneth, Jeffrey, Stephen, Mark, Paul, Scott, Jeremy, Adam, Travis, Jared, Evan, Luke, Isaac, Henry,
Theodore, Nathaniel, Lawrence, Gerald, Ronald, Donald, Jamal, DeShawn, Malik, Darnell, Terrence, Tyrone,
D'Andre, Xavier, Isaiah, Elijah, Liam, Mason, Carter, Owen, Wyatt, Grayson, Levi, Colton, Landon, Bryce
""")
US_FEMALE = words("""
Jessica, Ashley, Emily, Sarah, Samantha, Amanda, Elizabeth, Hannah, Lauren, Megan, Rachel, Jennifer,
Nicole, Stephanie, Katherine, Rebecca, Brittany, Taylor, Morgan, Chloe, Grace, Sophia, Olivia, Emma, Abigail,
Madison, Ava, Mia, Lily, Zoe, Natalie, Hailey, Kayla, Brianna, Victoria, Alexandra, Allison, Anna,
Margaret, Mary, Patricia, Susan, Deborah, Christina, Kimberly, Melissa, Cynthia, Pamela, Barbara, Jasmine,
Aaliyah, Imani, Destiny, Keisha, Ebony, Tiana, LaToya, Shaniqua, Josephine, Gabrielle, Caroline, Julia,
Claire, Audrey, Savannah, Paige, Courtney, Erin, Kelsey, Danielle, Amber, Heather, Tiffany, Crystal,
Mary Beth, Anne, Leah, Molly, Kathleen, Dorothy, Helen, Ruth, Evelyn, Harper, Avery, Addison, Ella
""")
# formal -> nicknames a person goes by (US, then Hispanic); own list
NICKS = {
    "William": ["Bill", "Will", "Billy", "Liam"], "Robert": ["Bob", "Rob", "Bobby", "Robbie"],
    "James": ["Jim", "Jimmy", "Jamie"], "John": ["Jack", "Johnny"], "Michael": ["Mike", "Mikey"],
    "Richard": ["Rick", "Rich", "Dick", "Richie"], "Thomas": ["Tom", "Tommy"], "Joseph": ["Joe", "Joey"],
    "Charles": ["Charlie", "Chuck"], "Christopher": ["Chris", "Topher"], "Daniel": ["Dan", "Danny"],
    "Matthew": ["Matt"], "Anthony": ["Tony"], "Andrew": ["Andy", "Drew"], "Joshua": ["Josh"],
    "David": ["Dave", "Davey"], "Steven": ["Steve"], "Stephen": ["Steve"], "Edward": ["Ed", "Eddie", "Ted", "Ned"],
    "Benjamin": ["Ben", "Benji"], "Nicholas": ["Nick", "Nico"], "Alexander": ["Alex", "Xander"],
    "Jonathan": ["Jon"], "Timothy": ["Tim"], "Zachary": ["Zach", "Zack"], "Samuel": ["Sam", "Sammy"],
    "Patrick": ["Pat", "Paddy"], "Peter": ["Pete"], "Gregory": ["Greg"], "Kenneth": ["Ken", "Kenny"],
    "Ronald": ["Ron", "Ronnie"], "Donald": ["Don", "Donnie"], "Lawrence": ["Larry"], "Gerald": ["Jerry"],
    "Jacob": ["Jake"], "Theodore": ["Theo", "Ted"], "Henry": ["Hank", "Harry"], "Nathaniel": ["Nate", "Nat"],
    "Jeffrey": ["Jeff"], "Nathan": ["Nate"], "Isaac": ["Ike"],
    "Elizabeth": ["Liz", "Beth", "Betsy", "Eliza", "Libby"], "Katherine": ["Kate", "Katie", "Kathy", "Kat"],
    "Kathleen": ["Kathy", "Kate"], "Margaret": ["Maggie", "Meg", "Peggy"], "Jennifer": ["Jen", "Jenny"],
    "Patricia": ["Pat", "Patty", "Trish"], "Susan": ["Sue", "Susie"], "Deborah": ["Deb", "Debbie"],
    "Rebecca": ["Becky", "Becca"], "Jessica": ["Jess", "Jessie"], "Samantha": ["Sam", "Sammie"],
    "Victoria": ["Vicky", "Tori"], "Christina": ["Tina", "Chris"], "Alexandra": ["Alex", "Lexi", "Sasha"],
    "Abigail": ["Abby"], "Cynthia": ["Cindy"], "Pamela": ["Pam"], "Kimberly": ["Kim"],
    "Melissa": ["Missy", "Mel"], "Stephanie": ["Steph"], "Barbara": ["Barb"], "Dorothy": ["Dot", "Dottie"],
    "Josephine": ["Josie", "Jo"], "Madison": ["Maddie"], "Olivia": ["Liv"], "Gabrielle": ["Gabby"],
    "Allison": ["Ally"], "Caroline": ["Carrie"], "Mary": ["Molly", "Polly"],
    "Guadalupe": ["Lupe"], "Jesús": ["Chuy"], "Alberto": ["Beto"], "Eduardo": ["Lalo"], "Ignacio": ["Nacho"],
    "Francisco": ["Paco", "Pancho"], "José": ["Pepe"], "Roberto": ["Beto"], "Alejandro": ["Alex"],
    "Enrique": ["Kike"], "Concepción": ["Concha"], "Dolores": ["Lola"], "Rosario": ["Charo"],
}

HISP_SURNAMES = words("""
García, Rodríguez, Martínez, Hernández, López, González, Pérez, Sánchez, Ramírez, Torres, Flores, Rivera,
Gómez, Díaz, Cruz, Morales, Reyes, Gutiérrez, Ortiz, Chávez, Ramos, Ruiz, Álvarez, Mendoza, Castillo,
Jiménez, Vásquez, Moreno, Romero, Herrera, Medina, Aguilar, Vargas, Castro, Guzmán, Fernández, Muñoz,
Salazar, Soto, Delgado, Peña, Núñez, Domínguez, Márquez, Ibáñez, Contreras, Guerrero, Estrada, Sandoval,
Cabrera, Espinoza, Fuentes, Cervantes, Navarro, Serrano, Valdez, Acosta, Rojas, Orozco, Pacheco, Zamora,
Villanueva, De la Cruz, De León, Del Valle, Montoya, Quintero, Arellano, Ochoa, Trujillo, Barrera, Benítez
""")
HISP_MALE = words("""José, Juan, Luis, Carlos, Jorge, Miguel, Jesús, Francisco, Alejandro, Daniel, Ricardo,
Eduardo, Fernando, Javier, Roberto, Manuel, Antonio, Sergio, Andrés, Diego, Alberto, Ignacio, Enrique,
Rafael, Óscar, Raúl, Héctor, Iván, Mateo, Santiago, Sebastián, Emilio, Joaquín, Ramón, Julio, Juan Carlos,
José Luis, Luis Ángel""")
HISP_FEMALE = words("""María, Ana, Guadalupe, Rosa, Sofía, Valeria, Camila, Daniela, Gabriela, Alejandra,
Verónica, Adriana, Carmen, Isabel, Lucía, Mariana, Natalia, Paola, Ximena, Yesenia, Dolores, Concepción,
Rosario, Elena, Beatriz, Inés, Mónica, Silvia, Araceli, Itzel, María José, Ana María, María Fernanda""")

VN_SURNAMES = shares("""Nguyễn 38, Trần 11, Lê 9.5, Phạm 7, Hoàng 5, Huỳnh 5, Phan 4.5, Vũ 4, Võ 4,
Đặng 2.1, Bùi 2, Đỗ 1.4, Hồ 1.3, Ngô 1.3, Dương 1, Lý 0.5, Đinh 0.6, Trương 0.8, Lâm 0.4, Đoàn 0.4""")
VN_MALE = words("Minh, Anh, Hùng, Dũng, Tuấn, Huy, Khoa, Long, Nam, Phúc, Quang, Sơn, Thắng, Việt, Đức, Bảo, Hiếu, Khánh, Trí, Đạt")
VN_FEMALE = words("Hương, Linh, Trang, Thảo, Hà, Lan, Mai, Ngọc, Phương, Thủy, Nhung, Hạnh, Vy, Hằng, Yến, Duyên, Quỳnh, Anh")
VN_MIDDLE_M = words("Văn, Minh, Quốc, Đức, Hoàng, Thanh")
VN_MIDDLE_F = words("Thị, Ngọc, Thanh, Thu, Kim, Minh")

ZH_SURNAMES = shares("""Wang 7.2, Li 7.1, Zhang 6.8, Liu 5.4, Chen 4.5, Yang 3.1, Huang 2.2, Zhao 2.1, Wu 2,
Zhou 1.9, Xu 1.5, Sun 1.5, Ma 1.2, Zhu 1.2, Hu 1.1, Guo 1.1, He 1, Lin 0.9, Gao 0.9, Luo 0.8, Zheng 0.8,
Liang 0.7, Xie 0.6, Song 0.6, Tang 0.6, Han 0.5, Feng 0.5, Deng 0.5, Cao 0.5, Peng 0.5, Zeng 0.5, Xiao 0.4,
Tian 0.4, Dong 0.4, Pan 0.4, Yuan 0.4, Cai 0.4, Jiang 0.4, Yu 0.4, Du 0.3, Ye 0.3, Cheng 0.3, Wei 0.3,
Su 0.3, Lu 0.3, Ding 0.3, Ren 0.3, Shen 0.3, Yao 0.3, Qiu 0.2, Fang 0.2, Tsai 0.2, Chang 0.4, Wong 0.3""")
ZH_SYLLABLES = words("""Wei, Fang, Jing, Li, Lei, Yan, Min, Jun, Hui, Ying, Xin, Yu, Hao, Jie, Tao, Ming, Qiang,
Xiao, Yi, Zhi, Chen, Hong, Bo, Lin, Ning, Rui, Shu, Ting, Xue, Yun, Zi, Han, Ke, Lu, Mei, Qing, Jia, Hua,
Tian, Xuan, Yue, Long, Peng, Feng, Chao, Kai, Dong, Shan, Wen, Yang""")
ZH_SINGLE = words("Wei, Fang, Jing, Lei, Yan, Min, Jun, Hui, Ying, Xin, Yu, Hao, Jie, Tao, Ming, Li, Na, Qiang, Tao, Bo")
# pinyin -> other romanisations (Wade-Giles, Cantonese, Taiwan) a second record may use
ZH_VARIANTS = {"Zhang": ["Chang", "Cheung"], "Xu": ["Hsu", "Hui"], "Chen": ["Chan", "Chin"], "Wang": ["Wong"],
               "Zhou": ["Chou", "Chow"], "Huang": ["Hwang", "Wong"], "Liu": ["Lau", "Lieu"], "Zhao": ["Chao", "Chiu"],
               "Li": ["Lee", "Lie"], "Lin": ["Lam", "Lim"], "Zheng": ["Cheng", "Cheung"], "Cai": ["Tsai", "Choi"],
               "Xie": ["Hsieh", "Tse"], "Guo": ["Kuo", "Kwok"], "He": ["Ho"], "Jiang": ["Chiang"], "Yang": ["Yeung"],
               "Gao": ["Kao"], "Cao": ["Tsao"], "Deng": ["Teng"], "Zeng": ["Tseng"], "Qiu": ["Chiu"], "Wu": ["Ng", "Woo"],
               "Zhu": ["Chu", "Chue"], "Sun": ["Suen"], "Hu": ["Hoo"], "Luo": ["Lo", "Law"], "Ye": ["Yeh", "Yip"]}
KO_SURNAMES = shares("""Kim 21.5, Lee 14.7, Park 8.4, Choi 4.7, Jung 4.4, Kang 2.3, Cho 2.1, Yoon 2.1, Jang 2,
Lim 1.7, Han 1.5, Oh 1.5, Seo 1.4, Shin 1.4, Kwon 1.4, Hwang 1.4, Ahn 1.3, Song 1.3, Yoo 1.1, Hong 1.1""")
KO_VARIANTS = {"Lee": ["Yi", "Rhee", "I"], "Park": ["Pak", "Bak"], "Choi": ["Choe", "Chey"], "Jung": ["Chung", "Jeong"],
               "Kang": ["Gang"], "Cho": ["Jo"], "Yoon": ["Yun"], "Lim": ["Im", "Rim"], "Kwon": ["Gwon"],
               "Ahn": ["An"], "Yoo": ["Yu", "Ryu"], "Shin": ["Sin"], "Kim": ["Gim"], "Oh": ["O"], "Seo": ["Suh"]}
KO_GIVEN = words("""Min-jun, Seo-yeon, Ji-hoon, Ji-woo, Ha-eun, Do-yun, Soo-jin, Hye-jin, Jae-won, Sung-min,
Eun-ji, Young-ho, Ji-yeon, Hyun-woo, Min-seo, Seung-hyun, Yu-na, Dong-hyun, Ji-min, Su-bin, Jin, Hyun""")
ASIAN_ENGLISH_M = words("Jack, Kevin, Tony, Peter, Andy, Eric, Jason, Leo, Michael, David, Daniel, Sam, Ray, Vincent")
ASIAN_ENGLISH_F = words("Vivian, Lily, Annie, Tina, Jenny, Grace, Amy, Cindy, Joy, Helen, Irene, Sophie, Crystal, Iris")

SA_SURNAMES = words("""Patel, Shah, Singh, Kumar, Sharma, Gupta, Reddy, Rao, Desai, Mehta, Joshi, Iyer, Nair,
Agarwal, Chopra, Kapoor, Malhotra, Banerjee, Chatterjee, Mukherjee, Das, Bose, Ghosh, Khan, Chaudhry,
Pillai, Menon, Verma, Srinivasan, Krishnan, Venkatesan, Subramanian, Bhatt, Trivedi, Parikh, Pandya""")
SA_MALE = words("""Rahul, Amit, Arjun, Vikram, Rohan, Sanjay, Rajesh, Aditya, Karthik, Siddharth, Venkata,
Srinivas, Nikhil, Ankit, Varun, Harsh, Kiran, Pranav, Suresh, Anand""")
SA_FEMALE = words("""Priya, Anjali, Pooja, Neha, Divya, Kavya, Shreya, Aishwarya, Deepika, Lakshmi, Sneha,
Swati, Meera, Nisha, Ritu, Sunita, Kavitha, Ananya""")

AR_MALE = words("Mohammed, Ahmed, Ali, Omar, Hassan, Hussein, Youssef, Abdullah, Khalid, Ibrahim, Mustafa, Tariq, Karim, Samir")
AR_FEMALE = words("Fatima, Aisha, Mariam, Noor, Layla, Sara, Huda, Amira, Yasmin, Zainab, Rania, Dina, Hala, Salma")
AR_SURNAMES = words("""Al-Sayed, Abdullah, Hassan, Haddad, Khalil, Mansour, Nasser, Saleh, Hamdan, Al-Rashid,
Aziz, Farah, Ibrahim, Mahmoud, Rahman, Qureshi, Siddiqui, Sheikh, Al-Amin, Suleiman, Abboud, Khoury""")
AR_VARIANTS = {"Mohammed": ["Muhammad", "Mohamed", "Mohammad", "Muhammed"], "Ahmed": ["Ahmad"], "Omar": ["Umar"],
               "Hassan": ["Hasan"], "Hussein": ["Husain", "Hussain"], "Youssef": ["Yusuf", "Yousef"],
               "Abdullah": ["Abdallah"], "Khalid": ["Khaled"], "Mustafa": ["Mostafa"], "Fatima": ["Fatimah"],
               "Aisha": ["Ayesha", "Aysha"], "Mariam": ["Maryam"], "Noor": ["Nour", "Nur"], "Layla": ["Leila", "Laila"],
               "Yasmin": ["Yasmine", "Jasmin"], "Zainab": ["Zaynab"], "Al-Sayed": ["El-Sayed", "Elsayed", "Alsayed"],
               "Al-Rashid": ["Alrashid", "Al Rashid"], "Mahmoud": ["Mahmud"], "Sheikh": ["Shaikh"],
               "Suleiman": ["Sulaiman"], "Nasser": ["Nasr"], "Al-Amin": ["Alamin"], "Saleh": ["Salih"]}

# European: letters that do not decompose (ø, ł, ß, æ, ı, đ), particles, Turkish dotless i
EU_PEOPLE = {
    "nordic": (words("Søren, Bjørn, Jørgen, Lars, Anders, Mikkel, Rasmus"),
               words("Sørensen, Jørgensen, Møller, Østergaard, Kjær, Ørsted, Ærø, Nørgaard, Bækgaard, Lindqvist"),
               words("Ingrid, Solveig, Mette, Kirsten, Åse, Sigrid, Maja")),
    "polish": (words("Łukasz, Paweł, Michał, Wojciech, Stanisław, Piotr, Tomasz"),
               words("Łukaszewski, Kowalski, Wiśniewski, Wójcik, Zieliński, Dąbrowski, Kozłowski, Małecki, Szczęsny"),
               words("Małgorzata, Łucja, Agnieszka, Katarzyna, Żaneta, Joanna")),
    "german": (words("Jürgen, Björn, Günter, Matthias, Jörg, Klaus, Stefan"),
               words("Müller, Schröder, Groß, Weiß, Köhler, Schäfer, Krüger, Strauß, Fuß, Meißner"),
               words("Jülide, Käthe, Birgit, Jutta, Grete, Ursula, Sabine")),
    "turkish": (words("İbrahim, İsmail, Barış, Çağrı, Oğuz, Işık, Emre"),
                words("Yılmaz, Kılıç, Çelik, Şahin, Öztürk, Aydın, Doğan, Yıldız, Işık, Kaya"),
                words("Ayşe, Gül, Şule, Ilgın, Sıla, Elif, Özge")),
    "balkan": (words("Đorđe, Đuro, Nikola, Miloš, Dušan, Luka"),
               words("Đorđević, Jovanović, Petrović, Kovačević, Đukić, Marković, Nikolić"),
               words("Jelena, Milica, Ivana, Đurđa, Snežana")),
    "dutch": (words("Pieter, Joost, Maarten, Sander, Bram, Thijs"),
              words("van der Berg, van den Heuvel, de Vries, de Jong, van Dijk, van der Meer, ten Brink, van Leeuwen"),
              words("Anouk, Sanne, Femke, Lieke, Marloes")),
    "french": (words("François, Benoît, Jérôme, Stéphane, Théo, Loïc"),
               words("Dubois, Lefèvre, Béranger, Gauthier, Fontaine, Mercier, D'Amboise, Leclère"),
               words("Hélène, Chloé, Zoé, Élodie, Anaïs, Gaëlle")),
    "irish": (words("Seán, Ciarán, Pádraig, Eoin, Darragh"),
              words("Ó Briain, O'Sullivan, O'Donnell, Mac Giolla, Ní Bhriain, O'Reilly, McGrath, MacNamara"),
              words("Siobhán, Niamh, Aoife, Róisín, Saoirse")),
}
EU_TAIL = [a + b for a in GERMANIC_A for b in GERMANIC_B]
# How a surname with a particle or an apostrophe is written elsewhere: "van der Berg" as
# "Vanderberg" or "Berg", "De la Cruz" as "Dela Cruz", "O'Brien" as "OBrien" or "O’Brien".
PARTICLES = ("van der ", "van den ", "van ", "de la ", "de ", "del ", "ten ", "ó ", "ní ", "mac ")


def particle_variants(last: str) -> list[str]:
    """Other spellings of a surname with a particle, an apostrophe or Mc (empty if it has none)."""
    out = []
    low = last.lower()
    for part in PARTICLES:
        if low.startswith(part):
            rest = last[len(part):]
            head = last[:len(part)].strip()
            titled = " ".join(w.capitalize() for w in head.split())
            joined = head.replace(" ", "")
            out += [f"{titled} {rest}", (joined + rest).capitalize(), f"{joined.capitalize()} {rest}", rest]
            break
    if "'" in last:
        out += [last.replace("'", ""), last.replace("'", " "), last.replace("'", "\u2019")]
    if last.startswith("Mc") and len(last) > 3:
        out += [f"Mc {last[2:]}", f"MC{last[2:].upper()}"]
    return [v for v in dict.fromkeys(out) if v and v != last]


# ---------------------------------------------------------------------------------------------
# Places, contacts

LOCAL_ZIPS = {"Raleigh": ["27601", "27603", "27604", "27605", "27606", "27607", "27608", "27609", "27610",
                          "27612", "27613", "27614", "27615", "27616", "27617"],
              "Durham": ["27701", "27703", "27704", "27705", "27707", "27713"],
              "Cary": ["27511", "27513", "27518", "27519"], "Chapel Hill": ["27514", "27516", "27517"],
              "Apex": ["27502", "27523", "27539"], "Garner": ["27529"], "Wake Forest": ["27587"],
              "Morrisville": ["27560"], "Carrboro": ["27510"]}
LOCAL_CITY = Pick(list(LOCAL_ZIPS), [40, 18, 12, 8, 5, 4, 4, 4, 5])
HOME_PLACES = [("Greensboro", "NC", "274"), ("Charlotte", "NC", "282"), ("Wilmington", "NC", "284"),
               ("Asheville", "NC", "288"), ("Richmond", "VA", "232"), ("Atlanta", "GA", "303"),
               ("Columbia", "SC", "292"), ("Baltimore", "MD", "212"), ("Philadelphia", "PA", "191"),
               ("Nashville", "TN", "372"), ("Charleston", "SC", "294"), ("Fairfax", "VA", "220"),
               ("Houston", "TX", "770"), ("Orlando", "FL", "328"), ("Chicago", "IL", "606")]
STREETS = words("""Main, Oak, Pine, Maple, Cedar, Elm, Washington, Lake, Hill, Park, Church, Franklin, Duke,
Hillsborough, Glenwood, Fayetteville, Wade, Peace, Oberlin, Western, Gorman, Avent Ferry, Method, Trinity,
Kildaire Farm, Six Forks, Falls of Neuse, Lake Boone, Durant, Creedmoor, Leesville, Millbrook, Lassiter Mill,
Ridge, Sunset, Magnolia, Dogwood, Willow, Chestnut, Poplar, Laurel, Highland, Spring, Meadow, Brookside""")
STREET_TYPES = [("Street", ["Street", "St.", "St", "street"]), ("Avenue", ["Avenue", "Ave", "Ave."]),
                ("Road", ["Road", "Rd", "Rd."]), ("Drive", ["Drive", "Dr", "Dr."]), ("Lane", ["Lane", "Ln"]),
                ("Court", ["Court", "Ct", "Ct."]), ("Boulevard", ["Boulevard", "Blvd", "Blvd."]),
                ("Trail", ["Trail", "Trl"]), ("Way", ["Way"]), ("Place", ["Place", "Pl"])]
UNIT_STYLES = ["Apt {u}", "Apt. {u}", "#{u}", "Unit {u}", "Apartment {u}", "APT {u}"]
DORMS = words("Bragaw, Sullivan, Lee, Owen, Tucker, Alexander, Wood, Avent, Carroll, Metcalf")
NC_AREA = Pick(["919", "984", "336", "704", "910", "252", "828"], [60, 10, 8, 8, 5, 5, 4])
OTHER_AREA = words("804, 404, 803, 410, 215, 615, 843, 703, 713, 407, 312, 202")
PROVIDERS = Pick(["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "aol.com",
                  "comcast.net", "protonmail.com", "live.com", "bellsouth.net"], [55, 12, 8, 8, 7, 3, 2, 2, 2, 1])
PARTNERS = ["unc.edu", "duke.edu", "nccu.edu", "ecu.edu", "uncg.edu", "wfu.edu", "appstate.edu"]
COUNTRY_PHONES = {"chinese": ("86", 11, "1"), "korean": ("82", 10, "10"), "south_asian": ("91", 10, "9"),
                  "vietnamese": ("84", 9, "9"), "arabic": ("966", 9, "5"), "european": ("49", 11, "15")}
COLLEGES = [("ENG", "College of Engineering"), ("HSS", "Humanities and Social Sciences"),
            ("SCI", "College of Sciences"), ("MGT", "Poole College of Management"), ("DES", "College of Design"),
            ("EDU", "College of Education"), ("AGR", "Agriculture and Life Sciences"), ("VET", "Veterinary Medicine"),
            ("TEX", "Wilson College of Textiles"), ("NAT", "Natural Resources")]
GROUP_DESC = {"UGRAD": "Undergraduate", "GRAD": "Graduate Student", "FACULTY": "Faculty", "STAFF": "Staff",
              "ALUMNI": "Alumni", "COMMUNITY": "Community Borrower", "RECIPROCAL": "Reciprocal Borrower",
              "FRIENDS": "Friends of the Library", "VISITING": "Visiting Scholar"}
ROLES = Pick(["UGRAD", "GRAD", "FACULTY", "STAFF", "former", "ALUMNI", "COMMUNITY", "RECIPROCAL", "FRIENDS",
              "VISITING"], [41, 15, 6, 9, 8, 6, 8, 3, 2, 2])
SIS_ROLES = frozenset({"UGRAD", "GRAD", "FACULTY", "STAFF", "former"})
AGES = {"UGRAD": (17, 24), "GRAD": (22, 45), "FACULTY": (29, 75), "STAFF": (21, 67), "former": (19, 40),
        "ALUMNI": (23, 80), "COMMUNITY": (18, 85), "RECIPROCAL": (20, 70), "FRIENDS": (40, 90),
        "VISITING": (27, 65)}
ORIGINS = Pick(["us", "hispanic", "chinese", "south_asian", "european", "korean", "vietnamese", "arabic"],
               [52, 17, 7, 6, 7, 3, 3, 3])
INTERNATIONAL = {"chinese": 0.55, "korean": 0.5, "vietnamese": 0.35, "south_asian": 0.5, "arabic": 0.45,
                 "european": 0.4}

# Duplicate patterns and their shares of extra accounts
DUP_PATTERNS = Pick(
    ["alum_old_sis_new_local", "local_other_id", "community_twice", "married_name", "married_hyphenated",
     "name_only", "sis_reenrolled", "double_surname", "transliteration", "initials", "middle_in_first",
     "dob_swap", "dob_typo", "nickname", "pref_name_as_first", "typo", "accents_dropped",
     "shared_other_email_only", "shared_other_phone_only", "shared_address_only", "rare_name_only",
     "local_no_birthdate"],
    [14, 12, 7, 5, 2, 2, 7, 5, 5, 3, 3, 2.5, 2.5, 5, 4, 5, 4, 2, 2, 2, 1.5, 4])
# Look-alikes: how many pairs per 100,000 people
LOOKALIKES = {"twins": 120, "siblings": 150, "parent_child": 100, "spouses": 160, "family_email": 100,
              "namesake": 200, "namesake_email_user": 80, "similar_email_user": 80, "roommates": 250,
              "institution_phone": 120, "placeholder_email": 80}
PLACEHOLDER_EMAILS = ["none@none.com", "noemail@piedmont.edu", "na@na.com", "noemail@gmail.com",
                      "library@piedmont.edu", "unknown@unknown.com"]

# ---------------------------------------------------------------------------------------------
# Text helpers (the generator's own; the linkage must not depend on them)

_NO_DECOMPOSE = str.maketrans({"đ": "d", "Đ": "D", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "ı": "i",
                               "æ": "ae", "Æ": "Ae", "ß": "ss", "þ": "th", "ð": "d", "œ": "oe", "Œ": "Oe"})
_GERMAN_TYPED = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ø": "oe",
                               "Ø": "Oe", "å": "aa", "Å": "Aa"})


@functools.lru_cache(maxsize=65536)
def ascii_typed(s: str, german: bool = False) -> str:
    """How a clerk types a name on a US keyboard: accents dropped, ø/ß/æ/ł/ı/đ spelled out."""
    if german:
        s = s.translate(_GERMAN_TYPED)
    s = s.translate(_NO_DECOMPOSE)
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def has_special(s: str) -> bool:
    return ascii_typed(s) != s


@functools.lru_cache(maxsize=65536)
def handle(s: str) -> str:
    """Letters for an email user name or netid."""
    return "".join(c for c in ascii_typed(s).lower() if c.isalnum())


_KEYS = "qwertyuiop asdfghjkl zxcvbnm"


def _neighbour(c: str, rng: random.Random) -> str:
    low = c.lower()
    i = _KEYS.find(low)
    if i < 0:
        return c
    near = [_KEYS[j] for j in (i - 1, i + 1) if 0 <= j < len(_KEYS) and _KEYS[j] != " "]
    out = rng.choice(near) if near else low
    return out.upper() if c.isupper() else out


def typo(s: str, rng: random.Random) -> str:
    """One slip: a swapped pair, a dropped, doubled or neighbouring letter (not the first letter)."""
    if len(s) < 4:
        return s + s[-1]
    i = rng.randrange(1, len(s) - 1)
    kind = rng.random()
    if kind < 0.3 and s[i] != s[i + 1]:
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]
    if kind < 0.55:
        return s[:i] + s[i + 1:]
    if kind < 0.75:
        return s[:i] + s[i] + s[i:]
    return s[:i] + _neighbour(s[i], rng) + s[i + 1:]


def fmt_phone(number: str, style: int) -> str:
    """A phone as a record writes it. ``number`` is ``"1|9195550134"`` or ``"86|13812345678"``."""
    cc, nat = number.split("|")
    if cc == "1":
        a, b, c = nat[:3], nat[3:6], nat[6:]
        return ("+1 ({a}) {b}-{c}", "({a}) {b}-{c}", "{a}-{b}-{c}", "{a}.{b}.{c}", "{a}{b}{c}", "1-{a}-{b}-{c}",
                "+1{a}{b}{c}", "{a} {b} {c}")[style % 8].format(a=a, b=b, c=c)
    head, rest = nat[:3], nat[3:]
    return (f"+{cc} {head} {rest[:4]} {rest[4:]}".strip(), f"+{cc}{nat}", f"00{cc} {nat}", f"+{cc}-{head}-{rest}",
            f"+{cc} {nat}", f"{cc} {nat}", f"+{cc} {head} {rest}", f"+{cc}{nat}")[style % 8]


def iso(d: date | None) -> str | None:
    return None if d is None else d.isoformat() + "Z"


def safe_date(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# People


@dataclass
class Household:
    address: tuple[str, str, str, str, str]  # number, street, street type, unit, city|state|zip
    phone: str | None  # landline "1|919..."; None for most student households
    family_email: str | None = None


@dataclass
class Person:
    pid: str
    origin: str
    sub: str  # European sub-origin, else ""
    sex: str
    first: str
    middle: str
    last: str  # full surname as the SIS writes it ("García López", "van der Berg", "Smith-Jones")
    parts: tuple[str, ...]  # the surnames of a double surname; else (last,)
    suffix: str
    pref: str
    birth: date
    role: str
    international: bool
    home: Household
    local: Household | None  # a student's local / campus address
    univ_id: str = ""
    netid: str = ""
    barcode: str = ""
    mobile: str | None = None
    work_phone: str | None = None
    personal: list[str] = field(default_factory=list)
    rare: bool = False
    accents_kept: bool = True


class Population:
    """The generator: people, their accounts and the planted look-alikes."""

    def __init__(self, users: int, seed: int) -> None:
        self.target = users
        self.rng = random.Random(f"realistic-{seed}")
        self.people: list[Person] = []
        self.records: list[dict[str, Any]] = []
        self.truth: list[tuple[str, str, str]] = []
        self.lookalikes: list[tuple[str, str, str]] = []
        self.used_ids: set[str] = set()
        self.used_emails: set[str] = set()
        self.used_phones: set[str] = set()
        self.used_addresses: set[tuple[str, ...]] = set()
        self.univ_seq = iter(random.Random(seed * 7 + 1).sample(range(10_000_000, 99_999_999), users * 2 + 1000))
        self.barcode_seq = iter(random.Random(seed * 7 + 2).sample(range(10 ** 9, 10 ** 10), users * 3 + 1000))
        self.dorm_rooms: list[tuple[Household, int]] = []
        self.dept_phones = [f"1|919515{n:04d}" for n in random.Random(seed * 7 + 3).sample(range(1000, 9999), 60)]
        self.handles: dict[str, int] = {}
        self.netids: dict[str, int] = {}

    # -- identities ----------------------------------------------------------------------------

    def unique_phone(self, area: str | None = None) -> str:
        rng = self.rng
        while True:
            num = f"1|{area or NC_AREA(rng)}{rng.randrange(200, 999)}{rng.randrange(0, 10000):04d}"
            if num not in self.used_phones:
                self.used_phones.add(num)
                return num

    def intl_phone(self, origin: str) -> str:
        cc, length, lead = COUNTRY_PHONES[origin]
        rng = self.rng
        while True:
            nat = lead + "".join(str(rng.randrange(10)) for _ in range(length - len(lead)))
            num = f"{cc}|{nat}"
            if num not in self.used_phones:
                self.used_phones.add(num)
                return num

    def unique_email(self, local: str, domain: str) -> str:
        local = local.strip(".") or "user"
        email = f"{local}@{domain}"
        rng = self.rng
        while email in self.used_emails:
            email = f"{local}{rng.randrange(1, 100) if rng.random() < 0.7 else rng.randrange(1960, 2008)}@{domain}"
        self.used_emails.add(email)
        return email

    def personal_email(self, first: str, last: str, birth: date) -> str:
        """A personal address. A clean user name (``maria.garcia``) exists once per provider in the
        world, so the first person of a name here gets one in a third of cases and a namesake rarely;
        everyone else has digits or a word in it, as real free-mail user names do."""
        rng = self.rng
        f, l_ = handle(first), handle(last.split()[0] if " " in last and rng.random() < 0.5 else last)
        r = rng.random()
        base = (f"{f}.{l_}" if r < 0.35 else f"{f}{l_}" if r < 0.55 else f"{f[:1]}{l_}" if r < 0.7 else
                f"{f}_{l_}" if r < 0.8 else f"{l_}{f[:1]}" if r < 0.9 else f"{l_}.{f}")
        seen = self.handles.get(base, 0)  # "jsmith" is scarce for every J. Smith, not per first name
        self.handles[base] = seen + 1
        if rng.random() < (0.35 if seen == 0 else 0.04):
            local = base
        elif rng.random() < 0.8:
            local = base + rng.choice([f"{birth.year % 100:02d}", str(birth.year), str(rng.randrange(1, 1000)),
                                       f"{birth.month}{birth.day}"])
        else:
            local = rng.choice(["tarheel", "wolfpack", "sunny", "bluesky", "coffee", "runner", "gamer", "music",
                                "book", "hoops", "river", "dragon", "panda", "kitty"]) + f"{f[:3]}{rng.randrange(1, 9999)}"
        return self.unique_email(local, PROVIDERS(rng))

    def netid(self, first: str, middle: str, last: str) -> str:
        base = (handle(first)[:1] + handle(middle)[:1] + handle(last)[:7]) or "user"
        netid = base
        n = self.netids.get(base, 1)
        while f"{netid}@{DOMAIN}" in self.used_emails:
            n += 1
            netid = f"{base}{n}"
        self.netids[base] = n
        self.used_emails.add(f"{netid}@{DOMAIN}")
        return netid

    def new_address(self, local: bool = True) -> tuple[str, str, str, str, str]:
        rng = self.rng
        while True:
            if local:
                city = LOCAL_CITY(rng)
                where = f"{city}|NC|{rng.choice(LOCAL_ZIPS[city])}"
            else:
                city, state, z3 = rng.choice(HOME_PLACES)
                where = f"{city}|{state}|{z3}{rng.randrange(1, 99):02d}"
            unit = ""
            if rng.random() < 0.35:
                unit = f"{rng.randrange(1, 40)}{rng.choice('ABCDEF')}" if rng.random() < 0.6 else str(rng.randrange(100, 3999))
            street = rng.choice(STREETS)
            stype = rng.randrange(len(STREET_TYPES))
            addr = (str(rng.randrange(10, 9999)), street, str(stype), unit, where + f"|{rng.randrange(1000, 9999)}")
            key = addr[:4] + (addr[4][:-5],)
            if key not in self.used_addresses:
                self.used_addresses.add(key)
                return addr

    def foreign_address(self, sub: str) -> tuple[str, str, str, str, str]:
        rng = self.rng
        if sub == "german" or rng.random() < 0.5:
            street = rng.choice(["Hauptstraße", "Bahnhofstraße", "Gartenstraße", "Schillerstraße", "Lindenstraße"])
            return (str(rng.randrange(1, 200)), street, "", "", f"{rng.choice(['Berlin', 'München', 'Köln'])}||"
                    f"{rng.randrange(10000, 99999)}|DE")
        return (str(rng.randrange(1, 300)), rng.choice(["Rue de la Paix", "Nørregade", "ulica Długa", "Via Roma"]),
                "", "", f"{rng.choice(['Paris', 'København', 'Kraków', 'Roma'])}||{rng.randrange(10000, 99999)}|EU")

    # -- names ---------------------------------------------------------------------------------

    def name(self, origin: str, sex: str) -> tuple[str, str, str, str, tuple[str, ...], str, bool, str]:
        """(sub-origin, first, middle, last, surname parts, suffix, rare, pref)."""
        rng = self.rng
        m = sex == "M"
        sub, middle, suffix, pref, rare = "", "", "", "", False
        parts: tuple[str, ...]
        if origin == "us":
            first = _US_M(rng) if m else _US_F(rng)
            if rng.random() < 0.4:
                rare = True
                last = (rng.choice(US_TAIL_A) + rng.choice(US_TAIL_B)) if rng.random() < 0.75 else rng.choice(EU_TAIL)
            else:
                last = _US_S(rng)
            if rng.random() < 0.04:
                other = _US_S(rng)
                if other != last:
                    last = f"{last}-{other}"
            parts = tuple(last.split("-"))
            if rng.random() < 0.7:
                middle = _US_M(rng) if m else _US_F(rng)
                if middle == first:
                    middle = ""
            if m and rng.random() < 0.03:
                suffix = rng.choice(["Jr", "Jr", "Jr", "II", "III", "Sr"])
            if rng.random() < 0.06:
                if first in NICKS:
                    pref = rng.choice(NICKS[first])
                elif middle:
                    pref = middle
        elif origin == "hispanic":
            first = _HI_M(rng) if m else _HI_F(rng)
            p1 = _HI_S(rng)
            if rng.random() < 0.25:
                p2 = _HI_S(rng)
                parts = (p1, p2) if p2 != p1 else (p1,)
            else:
                parts = (p1,)
            last = " ".join(parts)
            if " " not in first and rng.random() < 0.45:
                middle = _HI_M(rng) if m else _HI_F(rng)
                if middle == first:
                    middle = ""
            if rng.random() < 0.05 and first in NICKS:
                pref = rng.choice(NICKS[first])
        elif origin == "vietnamese":
            first = rng.choice(VN_MALE if m else VN_FEMALE)
            last = VN_SURNAMES(rng)
            parts = (last,)
            if rng.random() < 0.9:
                middle = rng.choice(VN_MIDDLE_M if m else VN_MIDDLE_F)
            if rng.random() < 0.45:
                pref = rng.choice(ASIAN_ENGLISH_M if m else ASIAN_ENGLISH_F)
        elif origin == "chinese":
            if rng.random() < 0.3:
                first = rng.choice(ZH_SINGLE)
            else:
                a, b = rng.choice(ZH_SYLLABLES), rng.choice(ZH_SYLLABLES)
                first = a + b.lower()
            last = ZH_SURNAMES(rng)
            parts = (last,)
            if rng.random() < 0.45:
                pref = rng.choice(ASIAN_ENGLISH_M if m else ASIAN_ENGLISH_F)
        elif origin == "korean":
            first = rng.choice(KO_GIVEN)
            last = KO_SURNAMES(rng)
            parts = (last,)
            if rng.random() < 0.45:
                pref = rng.choice(ASIAN_ENGLISH_M if m else ASIAN_ENGLISH_F)
        elif origin == "south_asian":
            first = _SA_M(rng) if m else _SA_F(rng)
            last = _SA_S(rng)
            parts = (last,)
            if rng.random() < 0.3:
                middle = _SA_M(rng) if m else _SA_F(rng)
                if middle == first:
                    middle = ""
        elif origin == "arabic":
            first = _AR_M(rng) if m else _AR_F(rng)
            last = _AR_S(rng)
            parts = (last,)
            if rng.random() < 0.35:
                middle = _AR_M(rng)
        else:  # european
            sub = rng.choice(list(EU_PEOPLE))
            firsts_m, lasts, firsts_f = EU_PEOPLE[sub]
            first = rng.choice(firsts_m if m else firsts_f)
            if rng.random() < 0.3:
                rare = True
                last = rng.choice(EU_TAIL)
            else:
                last = rng.choice(lasts)
            parts = (last,)
            if rng.random() < 0.4:
                middle = rng.choice(firsts_m if m else firsts_f)
                if middle == first:
                    middle = ""
        return sub, first, middle, last, parts, suffix, rare, pref

    # -- people --------------------------------------------------------------------------------

    def person(self, role: str | None = None, origin: str | None = None, **over: Any) -> Person:
        rng = self.rng
        role = role or ROLES(rng)
        origin = origin or ORIGINS(rng)
        sex = "M" if rng.random() < 0.47 else "F"
        sub, first, middle, last, parts, suffix, rare, pref = self.name(origin, sex)
        lo, hi = AGES[role]
        age = lo + int((hi - lo) * rng.random() ** 1.6) if role in ("UGRAD", "GRAD") else rng.randint(lo, hi)
        birth = TODAY - timedelta(days=age * 365 + rng.randrange(365))
        international = role in ("UGRAD", "GRAD", "former", "VISITING", "FACULTY") and \
            rng.random() < INTERNATIONAL.get(origin, 0.0) * (0.4 if role == "UGRAD" else 1.0)
        home = Household(self.foreign_address(sub) if international and origin == "european"
                         else self.new_address(local=rng.random() < 0.55), None)
        if rng.random() < (0.2 if role in ("UGRAD", "GRAD") else 0.35):
            home.phone = self.unique_phone()
        p = Person(pid="", origin=origin, sub=sub, sex=sex, first=first, middle=middle, last=last, parts=parts,
                   suffix=suffix, pref=pref, birth=birth, role=role, international=international, home=home,
                   local=None, rare=rare)
        for k, v in over.items():
            setattr(p, k, v)
        self.finish(p)
        return p

    def finish(self, p: Person) -> None:
        """Ids, netid, phones, emails, the local address; and the ASCII-or-not spelling."""
        rng = self.rng
        p.pid = f"P{len(self.people) + 1:07d}"
        p.accents_kept = rng.random() < 0.5
        if not p.accents_kept:
            p.first, p.middle, p.last = ascii_typed(p.first), ascii_typed(p.middle), ascii_typed(p.last)
            p.parts = tuple(ascii_typed(x) for x in p.parts)
        p.univ_id = f"2{next(self.univ_seq):08d}"
        p.barcode = f"2901{next(self.barcode_seq):010d}"
        p.netid = self.netid(p.first, p.middle, p.parts[0] if len(p.parts) > 1 else p.last)
        if rng.random() < 0.88:
            p.mobile = self.intl_phone(_phone_origin(p.origin)) if p.international and rng.random() < 0.5 \
                else self.unique_phone(None if rng.random() < 0.7 else rng.choice(OTHER_AREA))
        if p.role in ("FACULTY", "STAFF"):
            p.work_phone = rng.choice(self.dept_phones) if rng.random() < 0.15 else self.unique_phone("919")
        for _ in range(1 if rng.random() < 0.75 else 2):
            p.personal.append(self.personal_email(p.pref if p.pref and rng.random() < 0.3 else p.first, p.last, p.birth))
        if p.role in ("UGRAD", "GRAD") and rng.random() < 0.75:
            if p.role == "UGRAD" and rng.random() < 0.45:
                p.local = self.dorm(p)
            else:
                p.local = Household(self.new_address(local=True), None)
        self.people.append(p)

    def dorm(self, p: Person) -> Household:
        """A dorm room; two students share most rooms (the second is a room-mate look-alike)."""
        rng = self.rng
        if self.dorm_rooms and rng.random() < 0.5:
            room, _ = self.dorm_rooms.pop(rng.randrange(len(self.dorm_rooms)))
            return room
        hall = rng.choice(DORMS)
        room = Household((str(rng.randrange(100, 499)), f"{hall} Hall", "", "", f"Raleigh|NC|2760{rng.randrange(6, 8)}|"
                          f"{rng.randrange(1000, 9999)}"), None)
        self.dorm_rooms.append((room, len(self.people)))
        return room

    # -- accounts ------------------------------------------------------------------------------

    def account(self, p: Person, kind: str, pattern: str, *, first: str | None = None, middle: str | None = None,
                last: str | None = None, pref: str | None = None, birth: Any = "same", emails: list | None = None,
                phones: list | None = None, addresses: list | None = None, primary_id: str | None = None,
                univ_id: str | None = None, group: str | None = None, extra_ids: list | None = None) -> dict:
        """One Alma user object of person ``p``. ``kind``: ``sis`` (current), ``sis_old`` (INACTIVE) or
        ``local``. Emails/phones/addresses: lists of ``(value, type, preferred)``; None = the default
        for the kind."""
        rng = self.rng
        sis = kind in ("sis", "sis_old")
        group = group or (p.role if p.role in GROUP_DESC else rng.choice(["UGRAD", "GRAD"])) if sis else \
            group or (p.role if p.role not in SIS_ROLES else rng.choice(["COMMUNITY", "VISITING", "ALUMNI"]))
        first = p.first if first is None else first
        middle = p.middle if middle is None else middle
        last = p.last if last is None else last
        if p.suffix and last == p.last:
            r = rng.random()
            last = f"{last} {p.suffix}" if r < 0.25 else f"{last}, {p.suffix}." if r < 0.4 else last
        if birth == "same":
            birth = p.birth if (rng.random() < (0.995 if sis else 0.35)) else None
        if emails is None:
            emails = self.default_emails(p, kind)
        if phones is None:
            phones = self.default_phones(p, kind)
        if addresses is None:
            addresses = self.default_addresses(p, kind)
        emails, phones, addresses = _one_preferred(emails), _one_preferred(phones), _one_preferred(addresses)
        if primary_id is None:
            primary_id = univ_id or p.univ_id if sis else self.local_id(p, emails)
        primary_id = self.claim_id(primary_id)
        ids: list[tuple[str, str]] = []
        if sis:
            ids += [("UNIV_ID", univ_id or p.univ_id), ("NET_ID", p.netid)]
            if rng.random() < 0.8:
                ids.append(("BARCODE", p.barcode))
        else:
            code = primary_id if primary_id.isdigit() and len(primary_id) == 14 else \
                self.claim_id(f"2901{next(self.barcode_seq):010d}")
            ids.append(("BARCODE", code))
        ids += extra_ids or []
        expiry = (date(TODAY.year + 1, 8, 31) if kind == "sis" else
                  TODAY - timedelta(days=rng.randrange(200, 2500)) if kind == "sis_old" else
                  TODAY + timedelta(days=rng.randrange(-300, 365)))
        seg = "External" if sis else "Internal"
        college = rng.choice(COLLEGES)
        full = " ".join(x for x in (first, middle, last) if x)
        user = {
            "record_type": {"value": "PUBLIC", "desc": "Public"},
            "primary_id": primary_id,
            "first_name": first, "middle_name": middle, "last_name": last, "full_name": full,
            "pref_first_name": pref if pref is not None else (p.pref if sis else ""),
            "pref_middle_name": "", "pref_last_name": "", "pref_name_suffix": "",
            "user_title": {"value": "", "desc": ""},
            "user_group": {"value": group, "desc": GROUP_DESC[group]},
            "campus_code": {"value": "MAIN", "desc": "Main Campus"},
            "preferred_language": {"value": "en", "desc": "English"},
            "birth_date": iso(birth),
            "expiry_date": iso(expiry),
            "purge_date": iso(expiry + timedelta(days=365)) if rng.random() < 0.9 else None,
            "account_type": {"value": "EXTERNAL" if sis else "INTERNAL",
                             "desc": "External" if sis else "Internal"},
            "external_id": SIS_PROFILE if sis else "",
            "password": "",
            "force_password_change": "",
            "status": {"value": "INACTIVE", "desc": "Inactive"} if kind == "sis_old" else
                      {"value": "ACTIVE", "desc": "Active"},
            "contact_info": {
                "address": [self.address_json(a, t, pr, seg) for a, t, pr in addresses],
                "email": [{"email_address": e, "description": None, "preferred": pr, "segment_type": seg,
                           "email_type": [{"value": t, "desc": t.capitalize()}]} for e, t, pr in emails],
                "phone": [{"phone_number": fmt_phone(n, rng.randrange(8)) if "|" in n else n, "preferred": pr,
                           "preferred_sms": pr and t == "mobile", "segment_type": seg,
                           "phone_type": [{"value": t, "desc": t.capitalize()}]} for n, t, pr in phones],
            },
            "user_identifier": [{"value": v, "id_type": {"value": t, "desc": t.replace("_", " ").title()},
                                 "note": None, "status": "ACTIVE", "segment_type": seg} for t, v in ids],
            "user_role": [{"status": {"value": "ACTIVE", "desc": "Active"},
                           "scope": {"value": "01PSU_INST", "desc": "Piedmont State University"},
                           "role_type": {"value": "200", "desc": "Patron"}, "parameter": []}],
            "user_statistic": [{"statistic_category": {"value": college[0], "desc": college[1]},
                                "statistic_note": None, "segment_type": seg}] if sis else [],
        }
        self.records.append(user)
        self.truth.append((primary_id, p.pid, pattern))
        return user

    def claim_id(self, pid: str) -> str:
        base, n = pid, 1
        while pid.casefold() in self.used_ids:
            n += 1
            pid = f"{base}{n}" if not base.isdigit() else f"2901{next(self.barcode_seq):010d}"
        self.used_ids.add(pid.casefold())
        return pid

    def local_id(self, p: Person, emails: list) -> str:
        r = self.rng.random()
        if r < 0.5 or not emails:
            return f"2901{next(self.barcode_seq):010d}"
        if r < 0.8:
            return emails[0][0]
        return f"{handle(p.last)[:8]}{handle(p.first)[:1]}{self.rng.randrange(1, 999)}"

    def default_emails(self, p: Person, kind: str) -> list:
        rng = self.rng
        out = []
        if kind in ("sis", "sis_old"):
            if rng.random() < 0.99:
                out.append((f"{p.netid}@{DOMAIN}", "school", True))
            if p.personal and rng.random() < 0.65:
                out.append((p.personal[0], "personal", not out))
            if p.role in ("FACULTY", "STAFF") and rng.random() < 0.3:
                alias = self.unique_email(f"{handle(p.first)}_{handle(p.last)}", DOMAIN)
                out.append((alias, "work", False))
        else:
            if rng.random() < 0.95:
                email = p.personal[0] if p.personal else self.personal_email(p.first, p.last, p.birth)
                if p.role == "RECIPROCAL" and rng.random() < 0.7:  # their home university's address
                    user = handle(p.first)[:1] + handle(p.middle)[:1] + handle(p.last)[:8]
                    if rng.random() < 0.6:  # most schemes number or extend a common user name
                        user += str(rng.randrange(1, 30)) if rng.random() < 0.7 else f"{p.birth.year % 100:02d}"
                    email = self.unique_email(user, rng.choice(PARTNERS))
                out.append((email, "personal", True))
            if len(p.personal) > 1 and rng.random() < 0.3:
                out.append((p.personal[1], "personal", False))
        return out

    def default_phones(self, p: Person, kind: str) -> list:
        rng = self.rng
        out = []
        sis = kind in ("sis", "sis_old")
        if p.mobile and rng.random() < (0.85 if sis else 0.8):
            out.append((p.mobile, "mobile", True))
        if p.home.phone and rng.random() < (0.5 if sis else 0.3):
            out.append((p.home.phone, "home", not out))
        if p.work_phone and rng.random() < 0.7:
            out.append((p.work_phone, "office", not out))
        return out

    def default_addresses(self, p: Person, kind: str) -> list:
        rng = self.rng
        out = []
        if kind in ("sis", "sis_old"):
            if rng.random() < 0.9:
                out.append((p.home.address, "home", True))
            if p.local and rng.random() < 0.8:
                out.append((p.local.address, "school", not out))
        elif rng.random() < 0.85:
            h = p.local if p.local and rng.random() < 0.5 else p.home
            out.append((h.address, "home", True))
        return out

    def address_json(self, a: tuple, atype: str, preferred: bool, seg: str) -> dict:
        rng = self.rng
        number, street, stype, unit, where = a
        city, state, z5, plus4 = (where.split("|") + [""] * 4)[:4]
        if state in ("DE", "EU") or plus4 in ("DE", "EU"):  # a foreign address: "Hauptstraße 12"
            country = plus4
            st = street if rng.random() < 0.5 else ascii_typed(street).replace("strasse", "str.") \
                if rng.random() < 0.3 else street.replace("ß", "ss")
            return {"line1": f"{st} {number}", "line2": None, "city": city, "state_province": None,
                    "postal_code": z5, "country": {"value": "DEU" if country == "DE" else "", "desc": ""},
                    "address_note": None, "start_date": None, "end_date": None, "preferred": preferred,
                    "segment_type": seg, "address_type": [{"value": atype, "desc": atype.capitalize()}]}
        if stype:
            stname = rng.choice(STREET_TYPES[int(stype)][1])
            line1 = f"{number} {street} {stname}"
        else:  # a dorm: "Bragaw Hall 214" / "214 Bragaw Hall"
            line1 = f"{street} {number}" if rng.random() < 0.5 else f"{street}, Room {number}"
        line2 = None
        if unit:
            u = rng.choice(UNIT_STYLES).format(u=unit)
            if rng.random() < 0.75:
                line1 = f"{line1} {u}" if rng.random() < 0.5 else f"{line1}, {u}"
            else:
                line2 = u
        if rng.random() < 0.08:
            line1 = line1.upper()
        postal = f"{z5}-{plus4}" if plus4 and rng.random() < 0.35 else z5
        return {"line1": line1, "line2": line2, "line3": None, "city": city, "state_province": state,
                "postal_code": postal, "country": {"value": "USA", "desc": "United States"}, "address_note": None,
                "start_date": None, "end_date": None, "preferred": preferred, "segment_type": seg,
                "address_type": [{"value": atype, "desc": atype.capitalize()}]}

    # -- duplicates ----------------------------------------------------------------------------

    def carry(self, p: Person, orig: dict, *, email: float, phone: float, address: float,
              new_email: bool = True) -> tuple[list, list, list]:
        """Contacts of a later desk record: each of the original's kept with the given chance, plus
        whatever is new (a new personal email, a new phone, the current address)."""
        rng = self.rng
        ci = orig["contact_info"]
        emails = [(e["email_address"], e["email_type"][0]["value"], False) for e in ci["email"] if rng.random() < email]
        if new_email or not emails:
            if rng.random() < 0.8:
                emails.insert(0, (self.personal_email(p.first, p.last, p.birth), "personal", True))
        emails = _prefer(emails)
        phone_keys = [n for n in (p.mobile, p.home.phone) if n]
        phones = [(n, "mobile" if n == p.mobile else "home", False) for n in phone_keys if rng.random() < phone]
        if not phones and rng.random() < 0.5:
            phones = [(self.unique_phone(), "mobile", True)]
        phones = _prefer(phones)
        addrs = []
        if rng.random() < address:
            h = p.local if p.local and rng.random() < 0.4 else p.home
            addrs.append((h.address, "home", True))
        elif rng.random() < 0.7:
            addrs.append((self.new_address(local=True), "home", True))
        return emails, phones, addrs

    def duplicate(self, p: Person, orig: dict, pattern: str) -> None:
        """One extra account of ``p`` of the given pattern."""
        rng = self.rng
        local = "local"
        kw: dict[str, Any] = {}
        if pattern == "alum_old_sis_new_local":
            e, ph, ad = self.carry(p, orig, email=0.0, phone=0.5, address=0.25)
            if p.personal and rng.random() < 0.6:
                e = _prefer([(p.personal[0], "personal", True)] + [x for x in e if x[0] != p.personal[0]])
            if rng.random() < 0.5:
                alum = self.unique_email(f"{handle(p.first)}.{handle(p.last)}", ALUMNI_DOMAIN)
                e = _prefer(e + [(alum, "alumni", False)])
            self.account(p, local, pattern, group="ALUMNI", emails=e, phones=ph, addresses=ad,
                         birth=p.birth if rng.random() < 0.4 else None)
            return
        if pattern == "local_other_id":
            e, ph, ad = self.carry(p, orig, email=0.55, phone=0.5, address=0.4, new_email=rng.random() < 0.5)
            extra = [("UNIV_ID", p.univ_id)] if rng.random() < 0.25 else []
            self.account(p, local, pattern, emails=e, phones=ph, addresses=ad, extra_ids=extra,
                         birth=p.birth if rng.random() < 0.45 else None)
            return
        if pattern == "community_twice":
            e, ph, ad = self.carry(p, orig, email=0.5, phone=0.6, address=0.6, new_email=rng.random() < 0.5)
            first = typo(p.first, rng) if rng.random() < 0.15 else None
            self.account(p, local, pattern, group=orig["user_group"]["value"], first=first, emails=e, phones=ph,
                         addresses=ad, birth=p.birth if rng.random() < 0.35 else None)
            return
        if pattern in ("married_name", "married_hyphenated", "name_only"):
            new = _US_S(rng) if rng.random() < 0.7 else _HI_S(rng)
            if pattern == "married_hyphenated":
                new = f"{p.last}-{new}" if rng.random() < 0.6 else f"{p.last} {new}"
            if pattern == "name_only":
                e = [(self.personal_email(p.first, new, p.birth), "personal", True)]
                self.account(p, local, pattern, last=new, middle="", emails=e,
                             phones=[(self.unique_phone(), "mobile", True)] if rng.random() < 0.7 else [],
                             addresses=[(self.new_address(), "home", True)] if rng.random() < 0.8 else [], birth=None)
                return
            e, ph, ad = self.carry(p, orig, email=0.4, phone=0.55, address=0.3, new_email=True)
            # the married name in a new email; some keep the old one (with the old surname in it)
            e = _prefer([(self.personal_email(p.first, new.split("-")[-1].split()[-1], p.birth), "personal", True)]
                        + [x for x in e if not x[2]])
            self.account(p, local, pattern, last=new, emails=e, phones=ph, addresses=ad,
                         middle=p.last if rng.random() < 0.2 else None,
                         birth=p.birth if rng.random() < 0.5 else None)
            return
        if pattern == "sis_reenrolled":
            new_id = f"2{next(self.univ_seq):08d}"
            e = [(f"{p.netid}@{DOMAIN}", "school", True)] if rng.random() < 0.5 else \
                [(self.unique_email(p.netid + str(rng.randrange(2, 9)), DOMAIN), "school", True)]
            if p.personal and rng.random() < 0.5:
                e.append((p.personal[-1], "personal", False))
            ph = [(p.mobile, "mobile", True)] if p.mobile and rng.random() < 0.45 else []
            first = typo(p.first, rng) if rng.random() < 0.1 else None
            self.account(p, "sis", pattern, univ_id=new_id, first=first, emails=e, phones=ph,
                         group=rng.choice(["GRAD", "UGRAD", "STAFF"]),
                         birth=p.birth if rng.random() < 0.97 else None)
            return
        # name-variant patterns: a desk record (or SIS for some) with generic carry-over
        e, ph, ad = self.carry(p, orig, email=0.5, phone=0.5, address=0.4, new_email=rng.random() < 0.6)
        birth: Any = p.birth if rng.random() < 0.4 else None
        if pattern == "double_surname":
            kw["last"] = _surname_variant(p, rng)
        elif pattern == "transliteration":
            kw.update(_transliterate(p, rng))
        elif pattern == "initials":
            kw["first"] = p.first[0] + ("." if rng.random() < 0.6 else "")
            if p.middle and rng.random() < 0.3:
                kw["first"], kw["middle"] = p.first[0] + ".", p.middle
        elif pattern == "middle_in_first":
            middle = p.middle or self.name(p.origin, p.sex)[1]
            kw.update(first=f"{p.first} {middle}", middle="")
        elif pattern == "dob_swap":
            birth = _swapped(p.birth) or _typo_date(p.birth, rng)
        elif pattern == "dob_typo":
            birth = _typo_date(p.birth, rng)
        elif pattern == "nickname":
            kw["first"] = rng.choice(NICKS[p.first])
        elif pattern == "pref_name_as_first":
            kw.update(first=p.pref, pref="")
        elif pattern == "typo":
            if rng.random() < 0.5:
                kw["first"] = typo(p.first, rng)
            else:
                kw["last"] = typo(p.last, rng)
        elif pattern == "accents_dropped":
            german = p.sub in ("german", "nordic") and rng.random() < 0.5
            kw.update(first=ascii_typed(p.first, german), middle=ascii_typed(p.middle, german),
                      last=ascii_typed(p.last, german))
        elif pattern in ("shared_other_email_only", "shared_other_phone_only", "shared_address_only",
                         "rare_name_only"):
            e = [(self.personal_email(p.first, p.last, p.birth), "personal", True)]
            ph = [(self.unique_phone(), "mobile", True)] if rng.random() < 0.6 else []
            ad = [(self.new_address(), "home", True)] if rng.random() < 0.6 else []
            birth = None
            if pattern == "shared_other_email_only":
                e.append((p.personal[-1], "personal", False))
            elif pattern == "shared_other_phone_only":
                number = p.mobile or p.home.phone
                self.ensure(orig, "phone", number)
                ph = _prefer(ph + [(number, "home", False)])
            elif pattern == "shared_address_only":
                self.ensure(orig, "address", p.home.address)
                ad = [(p.home.address, "home", True)]
            kw["pref"] = ""
        elif pattern == "local_no_birthdate":
            birth = None
            if not any(x[0] in _emails_of(orig) for x in e):
                e = _prefer([(p.personal[0], "personal", True)] + e)
                self.ensure(orig, "email", p.personal[0])
        self.account(p, local, pattern, emails=e, phones=ph, addresses=ad, birth=birth, **kw)

    def ensure(self, rec: dict, what: str, value: Any, preferred: bool = False) -> None:
        """Give record ``rec`` the email, phone (``"1|919..."``) or address tuple ``value`` as a
        non-preferred entry if it lacks it (so a pattern that shares that field really does); with
        ``preferred``, a phone it adds becomes the preferred one."""
        ci = rec["contact_info"]
        if preferred and what == "phone":
            digits = value.split("|")[1]
            if not any("".join(c for c in x["phone_number"] if c.isdigit()).endswith(digits) for x in ci["phone"]):
                for x in ci["phone"]:
                    x["preferred"] = x["preferred_sms"] = False
                ci["phone"].insert(0, {"phone_number": fmt_phone(value, self.rng.randrange(8)), "preferred": True,
                                       "preferred_sms": False, "segment_type": "Internal" if rec["account_type"][
                                           "value"] == "INTERNAL" else "External",
                                       "phone_type": [{"value": "home", "desc": "Home"}]})
            return
        seg = "External" if rec["account_type"]["value"] == "EXTERNAL" else "Internal"
        if what == "email" and value not in _emails_of(rec):
            ci["email"].append({"email_address": value, "description": None, "preferred": not ci["email"],
                                "segment_type": seg, "email_type": [{"value": "personal", "desc": "Personal"}]})
        elif what == "phone":
            digits = value.split("|")[1]
            if not any("".join(c for c in x["phone_number"] if c.isdigit()).endswith(digits) for x in ci["phone"]):
                ci["phone"].append({"phone_number": fmt_phone(value, self.rng.randrange(8)),
                                    "preferred": not ci["phone"], "preferred_sms": False, "segment_type": seg,
                                    "phone_type": [{"value": "home", "desc": "Home"}]})
        elif what == "address":
            number, street = value[0], value[1]
            if not any(number in a["line1"] and street in a["line1"] for a in ci["address"]):
                ci["address"].append(self.address_json(value, "home", not ci["address"], seg))

    # -- look-alikes ---------------------------------------------------------------------------

    def relative(self, base: Person, kind: str) -> Person:
        """A different person related to ``base`` (a twin, sibling, parent, spouse, namesake...)."""
        rng = self.rng
        sex = "M" if rng.random() < 0.5 else "F"
        _, first, middle, _, _, _, _, pref = self.name(base.origin, sex)
        if first == base.first:
            _, first, middle, _, _, _, _, pref = self.name(base.origin, sex)
        over: dict[str, Any] = {"origin": base.origin, "sub": base.sub}
        role = base.role
        if kind == "twins":
            over.update(last=base.last, parts=base.parts, birth=base.birth, first=first, middle=middle, sex=sex,
                        home=base.home)
            role = base.role
        elif kind == "siblings":
            over.update(last=base.last, parts=base.parts, first=first, middle=middle, sex=sex, home=base.home,
                        birth=base.birth + timedelta(days=rng.choice([-1, 1]) * rng.randrange(400, 3000)))
            role = "UGRAD" if base.role != "UGRAD" else rng.choice(["UGRAD", "GRAD", "former", "COMMUNITY"])
        elif kind == "parent_child":
            gap = timedelta(days=rng.randrange(22 * 365, 40 * 365))
            older = base.birth.year < TODAY.year - 45  # base is the parent: this one is the child
            over.update(last=base.last, parts=base.parts, first=base.first, middle=base.middle if rng.random() < 0.6
                        else middle, sex=base.sex, home=base.home,
                        birth=base.birth + gap if older else base.birth - gap)
            role = rng.choice(["UGRAD", "GRAD", "COMMUNITY"]) if older else \
                rng.choice(["COMMUNITY", "FRIENDS", "ALUMNI", "STAFF", "FACULTY"])
        elif kind == "spouses":
            over.update(first=first, middle=middle, sex=sex, home=base.home,
                        birth=base.birth + timedelta(days=rng.randrange(-2500, 2500)))
            if rng.random() < 0.5:
                over.update(last=base.last, parts=base.parts)
            role = rng.choice(["COMMUNITY", "STAFF", "FACULTY", "GRAD", "FRIENDS"])
        elif kind == "family_email":
            over.update(last=base.last, parts=base.parts, first=first, middle=middle, sex=sex, home=base.home,
                        birth=base.birth + timedelta(days=rng.choice([-1, 1]) * rng.randrange(22 * 365, 35 * 365)))
            role = "COMMUNITY"
        elif kind in ("namesake", "namesake_email_user"):
            over.update(first=base.first, last=base.last, parts=base.parts, sex=base.sex)
            role = None
        elif kind == "similar_email_user":
            over.update(last=base.last, parts=base.parts, first=first, middle=middle, sex=sex)
            role = rng.choice(["UGRAD", "GRAD", "STAFF"])
        p = self.person(role=role, origin=base.origin)
        for k, v in over.items():
            setattr(p, k, v)
        if kind in ("twins", "siblings", "parent_child", "family_email") or (kind == "spouses" and over.get("last")):
            p.accents_kept = base.accents_kept
        p.netid = self.netid(p.first, p.middle, p.parts[0] if len(p.parts) > 1 else p.last)
        p.personal = [self.personal_email(p.first, p.last, p.birth)]
        if kind == "parent_child" and rng.random() < 0.5:
            p.suffix = "Jr" if p.birth > base.birth else "Sr"
        return p

    def plant_lookalikes(self, pool: list[tuple[Person, dict]], budget: int) -> None:
        rng = self.rng
        scale = self.target / 100_000
        by_kind = {k: max(1, round(v * scale)) for k, v in LOOKALIKES.items()}
        for kind in ("twins", "siblings", "parent_child", "spouses", "family_email", "namesake",
                     "namesake_email_user", "similar_email_user"):
            for _ in range(by_kind[kind]):
                if len(self.records) >= budget:
                    return
                base, rec = rng.choice(pool)
                if kind in ("namesake", "namesake_email_user"):
                    base, rec = _common_person(pool, rng)
                other = self.relative(base, kind)
                if kind == "family_email":
                    fam = self.unique_email(rng.choice([f"{handle(base.last)}family", f"the{handle(base.last)}s",
                                                        f"{handle(base.last)}.family{rng.randrange(1, 99)}"]),
                                            PROVIDERS(rng))
                    orec = self.account(other, "local", "original", emails=[(fam, "personal", True)],
                                        birth=other.birth if rng.random() < 0.8 else None)
                    self.ensure(rec, "email", fam)
                elif kind == "namesake_email_user":
                    e = [(self.unique_email(base.netid, PROVIDERS(rng)), "personal", True)]
                    orec = self.account(other, "local", "original", emails=e)
                elif kind == "similar_email_user":
                    near = handle(other.first)[:1] + base.netid[1:]
                    if f"{near}@{DOMAIN}" in self.used_emails or near == base.netid:
                        continue
                    self.used_emails.add(f"{near}@{DOMAIN}")
                    other.netid = near
                    orec = self.account(other, _kind(other), "original")
                elif kind in ("twins", "siblings", "spouses", "parent_child"):
                    # one household: its address on both records, its landline (a parent's and a
                    # child's in half the cases), preferred on some records
                    landline = base.home.phone = base.home.phone or self.unique_phone()
                    self.ensure(rec, "address", base.home.address)
                    phones = [(other.mobile, "mobile", True)] if other.mobile else []
                    if kind != "parent_child" or rng.random() < 0.5:
                        self.ensure(rec, "phone", landline, preferred=rng.random() < 0.4)
                        phones = _prefer([(landline, "home", True)] + phones) if rng.random() < 0.5 or not phones \
                            else _prefer(phones + [(landline, "home", False)])
                    birth = other.birth if kind != "parent_child" or _kind(other) != "local" or rng.random() < 0.6 \
                        else None
                    orec = self.account(other, _kind(other), "original", phones=phones, birth=birth,
                                        addresses=[(base.home.address, "home", True)])
                else:
                    orec = self.account(other, _kind(other), "original")
                self.lookalikes.append((rec["primary_id"], orec["primary_id"], kind))
        # room-mates: a dorm room shared (recorded as the two records of the room)
        rooms: dict[str, list[str]] = {}
        for rec in self.records:
            for a in rec["contact_info"]["address"]:
                if "Hall" in a["line1"]:
                    rooms.setdefault(_room_key(a), []).append(rec["primary_id"])
        pairs = [(v[0], v[1]) for v in rooms.values() if len(v) >= 2 and
                 self._person_of(v[0]) != self._person_of(v[1])]
        for a, b in rng.sample(pairs, min(len(pairs), by_kind["roommates"])):
            self.lookalikes.append((a, b, "roommates"))
        # a department's main number on several people; placeholder emails for community borrowers
        by_phone: dict[str, list[str]] = {}
        for rec in self.records:
            for ph in rec["contact_info"]["phone"]:
                digits = "".join(c for c in ph["phone_number"] if c.isdigit())[-10:]
                if f"1|{digits}" in self.dept_phones:
                    by_phone.setdefault(digits, []).append(rec["primary_id"])
        pairs = [(a, b) for v in by_phone.values() for a, b in zip(v, v[1:]) if self._person_of(a) != self._person_of(b)]
        for a, b in rng.sample(pairs, min(len(pairs), by_kind["institution_phone"])):
            self.lookalikes.append((a, b, "institution_phone"))
        community = [r for r in self.records if r["account_type"]["value"] == "INTERNAL"]
        chosen = rng.sample(community, min(len(community), by_kind["placeholder_email"] + 20))
        groups: dict[str, list[str]] = {}
        for rec in chosen:
            ph = PLACEHOLDER_EMAILS[0] if rng.random() < 0.4 else rng.choice(PLACEHOLDER_EMAILS[1:])
            emails = rec["contact_info"]["email"]
            for e in emails:
                e["preferred"] = False
            emails.insert(0, {"email_address": ph.upper() if rng.random() < 0.2 else ph, "description": None,
                              "preferred": True, "segment_type": "Internal",
                              "email_type": [{"value": "personal", "desc": "Personal"}]})
            groups.setdefault(ph, []).append(rec["primary_id"])
        pairs = [(a, b) for v in groups.values() for a, b in zip(v, v[1:]) if self._person_of(a) != self._person_of(b)]
        self.lookalikes.extend((a, b, "placeholder_email") for a, b in pairs[:by_kind["placeholder_email"]])

    def _person_of(self, primary_id: str) -> str:
        if not hasattr(self, "_owner"):
            self._owner = {t[0]: t[1] for t in self.truth}
        return self._owner.get(primary_id, "")

    # -- the whole population ------------------------------------------------------------------

    def build(self) -> None:
        rng = self.rng
        lookalike_share = sum(LOOKALIKES.values()) / 100_000 * 0.7
        budget = int(self.target * (1 - lookalike_share))
        pool: list[tuple[Person, dict]] = []
        while len(self.records) < budget:
            pattern = DUP_PATTERNS(rng) if rng.random() < DUP_PEOPLE else None
            p = self.eligible_person(pattern)
            kind = "sis_old" if pattern in ("alum_old_sis_new_local", "sis_reenrolled") else _kind(p)
            if pattern == "community_twice":
                kind = "local"
            if pattern == "sis_reenrolled":
                p.role = rng.choice(["UGRAD", "GRAD", "former"])
            rec = self.account(p, kind, "original",
                               group=rng.choice(["UGRAD", "UGRAD", "GRAD"]) if kind == "sis_old" else None,
                               birth=p.birth if pattern in ("dob_swap", "dob_typo") or
                               (kind != "local" and rng.random() < 0.995) else
                               (p.birth if rng.random() < 0.35 else None))
            if pattern == "shared_other_email_only":
                self.ensure(rec, "email", p.personal[-1])
            if pattern:
                self.duplicate(p, rec, pattern)
                if rng.random() < THIRD_ACCOUNT:
                    again = "community_twice" if kind == "local" else "local_other_id"
                    self.duplicate(p, rec, rng.choice([again, "local_no_birthdate", "typo",
                                                       "nickname" if p.first in NICKS else "initials"]))
            elif len(pool) < 200_000:
                pool.append((p, rec))
        self.plant_lookalikes(pool, self.target)
        while len(self.records) < self.target:  # fill to the exact size with single-account people
            p = self.person()
            self.account(p, _kind(p), "original")
        # Dup records are made right after their originals: shuffle so file order tells nothing
        order = list(range(len(self.records)))
        rng.shuffle(order)
        self.records = [self.records[i] for i in order]

    def eligible_person(self, pattern: str | None) -> Person:
        """A person the pattern can happen to (a nickname needs a formal name, a transliteration a
        name with variants, dropped accents a name that has some...)."""
        rng = self.rng
        if pattern is None:
            return self.person()
        role = {"alum_old_sis_new_local": "former", "local_other_id": rng.choice(["UGRAD", "GRAD", "FACULTY", "STAFF"]),
                "community_twice": "COMMUNITY", "sis_reenrolled": "former",
                # the preferred name comes from the SIS record (a desk record rarely sets one)
                "pref_name_as_first": rng.choice(["UGRAD", "UGRAD", "GRAD", "STAFF"])}.get(pattern)
        origin = {"double_surname": rng.choice(["hispanic", "hispanic", "hispanic", "us", "european"]),
                  "transliteration": rng.choice(["chinese", "korean", "arabic", "chinese", "korean"]),
                  "nickname": "us" if rng.random() < 0.85 else "hispanic",
                  "pref_name_as_first": rng.choice(["chinese", "korean", "vietnamese", "us"]),
                  "accents_dropped": rng.choice(["vietnamese", "european", "european", "hispanic"]),
                  "married_name": "us" if rng.random() < 0.7 else None,
                  "rare_name_only": "us"}.get(pattern)
        for _ in range(200):
            p = self.person(role=role, origin=origin)
            ok = {"double_surname": len(p.parts) > 1 or bool(particle_variants(p.last)),
                  "transliteration": _transliterate(p, random.Random(0)) != {},
                  "nickname": p.first in NICKS,
                  "pref_name_as_first": bool(p.pref) and p.pref != p.first,
                  "accents_dropped": has_special(p.first + p.middle + p.last),
                  "married_name": p.sex == "F", "married_hyphenated": p.sex == "F", "name_only": p.sex == "F",
                  "rare_name_only": p.rare,
                  "dob_swap": p.birth.day <= 12 and p.birth.day != p.birth.month,
                  "shared_other_phone_only": bool(p.mobile or p.home.phone),
                  }.get(pattern, True)
            if ok:
                return p
            self.people.pop()  # not this one: forget them (ids and emails stay claimed, harmlessly)
        raise RuntimeError(f"no person found for pattern {pattern}")


def _kind(p: Person) -> str:
    """The kind of a person's own account: current SIS, an old SIS record, or a desk record."""
    return "sis_old" if p.role == "former" else "sis" if p.role in SIS_ROLES else "local"


def _phone_origin(origin: str) -> str:
    return origin if origin in COUNTRY_PHONES else "european"


def _prefer(items: list) -> list:
    """Exactly one preferred entry (the first), as Alma allows."""
    return [(v, t, i == 0) for i, (v, t, _) in enumerate(items)]


def _one_preferred(items: list) -> list:
    """Keep the preferred entry if there is exactly one, else prefer the first (Alma allows one)."""
    if sum(1 for x in items if x[2]) == 1:
        return items
    return _prefer(items)


def _emails_of(rec: dict) -> set[str]:
    return {e["email_address"] for e in rec["contact_info"]["email"]}


def _room_key(a: dict) -> str:
    digits = "".join(c for c in a["line1"] if c.isdigit())
    hall = a["line1"].split(" Hall")[0].split()[-1]
    return f"{hall}|{digits}|{a['postal_code'][:5]}"


def _swapped(d: date) -> date | None:
    return safe_date(d.year, d.day, d.month) if d.day <= 12 and d.day != d.month else None


def _typo_date(d: date, rng: random.Random) -> date:
    s = d.strftime("%Y%m%d")
    for _ in range(50):
        i = rng.choice([2, 3, 4, 5, 6, 7])
        digit = str((int(s[i]) + rng.choice([1, -1, 2, 5])) % 10)
        t = s[:i] + digit + s[i + 1:]
        out = safe_date(int(t[:4]), int(t[4:6]), int(t[6:]))
        if out and out != d:
            return out
    return d + timedelta(days=1)


def _surname_variant(p: Person, rng: random.Random) -> str:
    if len(p.parts) < 2:
        return rng.choice(particle_variants(p.last))
    a = p.parts[0]
    b = p.parts[1] if len(p.parts) > 1 else ""
    options = [f"{a}-{b}", f"{ascii_typed(a)}-{ascii_typed(b)}", ascii_typed(a), a, f"{ascii_typed(a)} {ascii_typed(b)}",
               f"{a}{b}".replace(" ", ""), b]
    weights = [25, 20, 25, 10, 10, 5, 5]
    pick = Pick(options, weights)
    for _ in range(20):
        v = pick(rng)
        if v and v != p.last:
            return v
    return a


def _transliterate(p: Person, rng: random.Random) -> dict[str, str]:
    out: dict[str, str] = {}
    if p.origin == "chinese":
        if p.last in ZH_VARIANTS and (rng.random() < 0.7 or len(p.first) < 5):
            out["last"] = rng.choice(ZH_VARIANTS[p.last])
        elif len(p.first) >= 5:
            for i in range(2, len(p.first) - 1):
                if p.first[:i] in ZH_SYLLABLES and p.first[i:].capitalize() in ZH_SYLLABLES:
                    a, b = p.first[:i], p.first[i:]
                    out["first"] = rng.choice([f"{a}-{b}", f"{a} {b.capitalize()}", f"{a}-{b.capitalize()}"])
                    break
    elif p.origin == "korean":
        if p.last in KO_VARIANTS and rng.random() < 0.7:
            out["last"] = rng.choice(KO_VARIANTS[p.last])
        elif "-" in p.first:
            a, b = p.first.split("-")
            out["first"] = rng.choice([a + b, f"{a} {b.capitalize()}", f"{a}-{b.capitalize()}", f"{a}{b.capitalize()}"])
    elif p.origin == "arabic":
        if p.first in AR_VARIANTS and (rng.random() < 0.7 or p.last not in AR_VARIANTS):
            out["first"] = rng.choice(AR_VARIANTS[p.first])
        elif p.last in AR_VARIANTS:
            out["last"] = rng.choice(AR_VARIANTS[p.last])
    return out


def _common_person(pool: list[tuple[Person, dict]], rng: random.Random) -> tuple[Person, dict]:
    """A person with a common name: a top-ten surname of their origin and a common first name."""
    for _ in range(200):
        p, rec = rng.choice(pool)
        if (p.origin == "us" and p.last in US_SURNAMES[:15] and p.first in (US_MALE[:20] + US_FEMALE[:20])) or \
           (p.origin == "hispanic" and p.last in ("García", "Garcia", "Rodríguez", "Rodriguez", "Martínez", "Martinez",
                                                  "Hernández", "Hernandez", "López", "Lopez")) or \
           (p.origin in ("chinese", "korean", "vietnamese") and p.last in ("Wang", "Li", "Zhang", "Liu", "Chen", "Kim",
                                                                          "Lee", "Park", "Nguyen", "Nguyễn")):
            return p, rec
    return rng.choice(pool)


_US_M, _US_F, _US_S = zipf(US_MALE, 0.9), zipf(US_FEMALE, 0.9), zipf(US_SURNAMES, 1.0, 3)
_HI_M, _HI_F, _HI_S = zipf(HISP_MALE, 0.9), zipf(HISP_FEMALE, 0.9), zipf(HISP_SURNAMES, 1.0, 2)
_SA_M, _SA_F, _SA_S = zipf(SA_MALE, 0.8), zipf(SA_FEMALE, 0.8), zipf(SA_SURNAMES, 1.1, 1)
_AR_M, _AR_F, _AR_S = zipf(AR_MALE, 1.0), zipf(AR_FEMALE, 0.9), zipf(AR_SURNAMES, 0.8)


# ---------------------------------------------------------------------------------------------
# Files


def write_population(out: Path, users: int, seed: int) -> dict[str, Any]:
    """Generate and write ``users.jsonl``, ``truth.csv`` and ``lookalikes.csv`` into ``out``.

    Args:
        out: The folder (created if needed).
        users: Number of Alma user records.
        seed: The random seed; the same ``(users, seed)`` gives the same files.

    Returns:
        A summary: records, people, people with two or more accounts, look-alike pairs, seconds.
    """
    start = time.perf_counter()
    pop = Population(users, seed)
    pop.build()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "users.jsonl.part"
    with open(tmp, "w", encoding="utf-8") as fh:
        for rec in pop.records:
            fh.write(json.dumps(rec, ensure_ascii=False))
            fh.write("\n")
    with open(out / "truth.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["primary_id", "person_id", "pattern"])
        w.writerows(sorted(pop.truth))
    with open(out / "lookalikes.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["primary_id_l", "primary_id_r", "pattern"])
        w.writerows(pop.lookalikes)
    tmp.replace(out / "users.jsonl")  # last: a folder with users.jsonl is complete
    accounts: dict[str, int] = {}
    for _, person, _ in pop.truth:
        accounts[person] = accounts.get(person, 0) + 1
    return {"records": len(pop.records), "people": len(accounts),
            "multi_account_people": sum(1 for n in accounts.values() if n > 1),
            "lookalike_pairs": len(pop.lookalikes), "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(json.dumps(write_population(args.out, args.users, args.seed)))


if __name__ == "__main__":
    main()
